//! Frames of any link type, through decoding, the TCP stage and the whole pipeline. The input is
//! a sequence of records: [link selector u8][len u16 le][bytes], so the fuzzer can build streams.
#![no_main]
use alarmscope::capture::LinkType;
use alarmscope::pipeline::{Analyzer, PipelineConfig};
use alarmscope::time::Timestamp;
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
];

fuzz_target!(|data: &[u8]| {
    let mut an = Analyzer::new(PipelineConfig::default());
    let mut rest = data;
    let mut n = 0u64;
    while rest.len() >= 3 {
        let link = LINKS[usize::from(rest[0]) % LINKS.len()];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        n += 1;
        an.frame(n, Timestamp(n as i64 * 1_000_000), link, frame, frame.len() as u32 + u32::from(rest[0] >> 4));
        rest = &rest[3 + len..];
    }
    let (conns, _, _) = an.finish();
    let mut conns = conns;
    let counters = alarmscope::pipeline::Counters::default();
    let f = alarmscope::diagnose::diagnose(&mut conns, &counters, None);
    let s = f.summary;
    assert_eq!(s.ok + s.error_status + s.no_response + s.incomplete, s.requests);
});
