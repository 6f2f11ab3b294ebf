//! Runs doctor's parsers over documents real devices produced (`../shared/real-devices`, kept
//! outside the repository; see `scripts/check-real-devices`): deviceInfo (`system/`), event
//! triggers (`triggers/`) and alertStream output (`streams/`), each compared with what the
//! collection's `manifest.json` says the document holds.
//!
//! Usage: `check_real_devices DIR [-v]`. Last line: `real devices: N of M documents parsed
//! right`; exit status 1 on any failure.

use std::collections::BTreeMap;
use std::path::Path;

use alarmscope::device::info::parse_device_info;
use alarmscope::device::triggers::parse_triggers;
use alarmscope::isapi::alert_stream::{AlertStreamDecoder, StreamItem};
use serde_json::Value;

fn manifest(dir: &Path) -> Vec<Value> {
    std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<Value>>(&b).ok())
        .unwrap_or_default()
}

fn s(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn check_system(dir: &Path, e: &Value) -> Result<(), String> {
    let body = std::fs::read(dir.join(s(e, "file"))).map_err(|e| e.to_string())?;
    let info = parse_device_info(&body).map_err(|e| e.to_string())?;
    if info.model != s(e, "model") {
        return Err(format!(
            "model {:?}, manifest {:?}",
            info.model,
            s(e, "model")
        ));
    }
    let want_type = e.get("deviceType").and_then(Value::as_str).unwrap_or("");
    if info.device_type != want_type {
        return Err(format!(
            "deviceType {:?}, manifest {want_type:?}",
            info.device_type
        ));
    }
    Ok(())
}

fn check_triggers(dir: &Path, e: &Value) -> Result<(), String> {
    let body = std::fs::read(dir.join(s(e, "file"))).map_err(|e| e.to_string())?;
    let got = parse_triggers(&body).map_err(|e| e.to_string())?;
    let want = e
        .get("entries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if got.len() != want.len() {
        return Err(format!("{} triggers, manifest {}", got.len(), want.len()));
    }
    for (g, w) in got.iter().zip(&want) {
        let wc = w.get("channel").and_then(Value::as_str).map(str::to_string);
        let wcenter = w.get("center").and_then(Value::as_bool).unwrap_or(false);
        if g.id != s(w, "id")
            || g.event_type != s(w, "eventType")
            || g.channel != wc
            || g.notifies_center() != wcenter
        {
            return Err(format!("trigger {:?}: got {g:?}, manifest {w}", g.id));
        }
    }
    Ok(())
}

fn boundary_of(ct: &str) -> Option<String> {
    ct.split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .next()
}

fn check_stream(dir: &Path, e: &Value) -> Result<(), String> {
    let raw = std::fs::read(dir.join(s(e, "file"))).map_err(|e| e.to_string())?;
    let (stream, boundary) = if s(e, "kind") == "alertStream-parts" {
        // One part body per line: rebuilt as the stream a device writes (delimiter first).
        let mut out = Vec::new();
        for line in raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            let body = s(&v, "content");
            out.extend_from_slice(
                format!("--boundary\r\nContent-Type: application/xml; charset=\"UTF-8\"\r\nContent-Length: {}\r\n\r\n{body}\r\n", body.len()).as_bytes(),
            );
        }
        (out, Some("boundary".to_string()))
    } else {
        (raw, boundary_of(&s(e, "response_content_type")))
    };
    let want: BTreeMap<String, u64> = e
        .get("eventTypes")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    for chunk in [usize::MAX, 1500, 7] {
        let mut d = AlertStreamDecoder::new(boundary.as_deref());
        let mut items = Vec::new();
        for c in stream.chunks(chunk) {
            d.feed(c, &mut items);
        }
        d.finish(&mut items);
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for i in &items {
            if let StreamItem::Event { event, .. } = i {
                let ty = event
                    .tree
                    .child_text("eventType")
                    .unwrap_or("?")
                    .to_string();
                *got.entry(ty).or_default() += 1;
            }
        }
        if got != want {
            return Err(format!(
                "chunks of {chunk}: event types {got:?}, manifest {want:?}"
            ));
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(root) = args.get(1).map(Path::new) else {
        eprintln!("usage: check_real_devices DIR [-v]");
        std::process::exit(2);
    };
    let verbose = args.iter().any(|a| a == "-v");
    let (mut ok, mut total) = (0u32, 0u32);
    type Check = fn(&Path, &Value) -> Result<(), String>;
    let kinds: [(&str, Check); 3] = [
        ("system", check_system),
        ("triggers", check_triggers),
        ("streams", check_stream),
    ];
    for (sub, check) in kinds {
        let dir = root.join(sub);
        let entries = manifest(&dir);
        if entries.is_empty() {
            eprintln!("FAIL {sub}: no manifest.json entries in {}", dir.display());
            total += 1;
            continue;
        }
        for e in &entries {
            total += 1;
            match check(&dir, e) {
                Ok(()) => {
                    ok += 1;
                    if verbose {
                        println!("ok   {sub}/{}", s(e, "file"));
                    }
                }
                Err(m) => println!("FAIL {sub}/{}: {m}", s(e, "file")),
            }
        }
    }
    println!("real devices: {ok} of {total} documents parsed right");
    std::process::exit(if ok == total { 0 } else { 1 });
}
