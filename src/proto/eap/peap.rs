//! PEAPv0 (MS-PEAP) Result TLV and header-less inner packets: next commit.
