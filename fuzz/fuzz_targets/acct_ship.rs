//! The accounting shipper's reading of the log: input-chosen bytes as log lines (torn,
//! glued, any JSON, any values) → records → radacct rows → a coalesced batch. Must never
//! panic; a batch's rows have distinct acctuniqueid (one multi-row upsert cannot name a
//! row twice) and a stopped row stays stopped.

#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use radshard::accounting::ship::line::parse_line;
use radshard::accounting::ship::row::{action, Action, Batch, Statement};

fuzz_target!(|data: &[u8]| {
    let mut batch = Batch::default();
    for line in data.split_inclusive(|&b| b == b'\n').take(1024) {
        let Ok(record) = parse_line(line) else {
            continue;
        };
        if let Action::Row(row) = action(&record) {
            assert_eq!(row.acctuniqueid.len(), 32);
        }
        batch.push(&record);
    }
    for s in batch.statements() {
        if let Statement::Upsert(rows) = s {
            let mut seen = HashSet::new();
            for r in rows {
                assert!(seen.insert(r.acctuniqueid.as_str()), "a uid twice in one statement");
                assert!(r.acctstoptime.is_none() || r.kind == radshard::accounting::ship::row::Kind::Stop);
            }
        }
    }
});
