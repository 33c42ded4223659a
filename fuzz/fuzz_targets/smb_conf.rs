//! Untrusted smb.conf text (operators' files, includes of others') -> the [global] reader
//! `[winbind]` uses for the workgroup and winbindd's socket directory. Must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use radshard::backend::winbind::config::parse_smb_conf;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let conf = parse_smb_conf(text);
        std::hint::black_box((conf.workgroup, conf.socket_dir));
    }
});
