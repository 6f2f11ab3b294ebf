//! A byte stream through the HTTP decoder in both directions, split at fuzzer-chosen points:
//! the events must not depend on the split.
#![no_main]
use alarmscope::http::{HttpEvent, Kind, Limits, MessageDecoder};
use libfuzzer_sys::fuzz_target;

fn run(kind: Kind, data: &[u8], splits: &[u8]) -> (Vec<String>, Vec<u8>) {
    let mut d = MessageDecoder::new(kind, Limits::default());
    let mut heads = Vec::new();
    let mut body = Vec::new();
    let mut sink = |e: HttpEvent<'_>| match e {
        HttpEvent::Body(b) => body.extend_from_slice(b),
        other => heads.push(format!("{other:?}")),
    };
    let mut rest = data;
    for s in splits {
        let k = (usize::from(*s)).min(rest.len());
        d.feed(&rest[..k], &mut sink);
        rest = &rest[k..];
    }
    d.feed(rest, &mut sink);
    d.eof(&mut sink);
    assert_eq!(d.offset(), data.len() as u64);
    (heads, body)
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, splits) = input;
    for kind in [Kind::Request, Kind::Response] {
        let whole = run(kind, &data, &[]);
        let split = run(kind, &data, &splits);
        assert_eq!(whole, split);
    }
});
