//! A whole capture file (pcap or pcapng bytes) through libpcap and the replay pipeline.
#![no_main]
use std::io::Write;

use alarmscope::replay::{replay, ReplayOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("alarmscope-fuzz-{}.pcap", std::process::id()));
    let Ok(mut f) = std::fs::File::create(&path) else { return };
    if f.write_all(data).is_err() {
        return;
    }
    drop(f);
    if let Ok(r) = replay(&path, ReplayOptions::default(), &mut |_| {}, &mut |_| {}) {
        let s = r.summary;
        assert_eq!(s.ok + s.error_status + s.no_response + s.incomplete, s.requests);
    }
});
