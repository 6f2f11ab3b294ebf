//! Multipart (and plain) bodies through the body decoder, split at fuzzer-chosen points: part
//! sizes must not depend on the split and must add up to no more than the body.
#![no_main]
use alarmscope::isapi::{BodyDecoder, BodyLimits};
use libfuzzer_sys::fuzz_target;

fn run(ct: &str, data: &[u8], splits: &[u8]) -> Vec<u64> {
    let mut d = BodyDecoder::new(Some(ct), BodyLimits::default());
    let mut rest = data;
    for s in splits {
        let k = usize::from(*s).min(rest.len());
        d.feed(&rest[..k], None);
        rest = &rest[k..];
    }
    d.feed(rest, None);
    let r = d.finish(None);
    assert_eq!(r.bytes, data.len() as u64);
    r.parts.iter().map(|p| p.bytes).collect()
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, splits) = input;
    for ct in ["multipart/form-data; boundary=MIME_boundary", "multipart/form-data; boundary=\"AaB03x\"", "application/xml"] {
        let a = run(ct, &data, &[]);
        let b = run(ct, &data, &splits);
        assert_eq!(a, b);
        assert!(a.iter().sum::<u64>() <= data.len() as u64);
    }
});
