//! Diameter AVPs in EAP-TTLS (RFC 5281 §10): next commit.
