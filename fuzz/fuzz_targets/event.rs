//! XML and JSON event decoding on arbitrary bytes.
#![no_main]
use alarmscope::isapi::decode_event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for ct in [None, Some("application/xml"), Some("application/json"), Some("text/plain")] {
        let _ = decode_event(data, ct);
    }
});
