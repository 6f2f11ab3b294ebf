//! Key log parsing and record decryption on fuzzer bytes: a key log fed whole and in two
//! pieces must give the same sessions and warnings; two byte streams (device->server,
//! server->device) with gaps at fuzzer-chosen places go through the decryptor, which must not
//! panic, must stay within its memory bound, and without gaps must hand on the same events
//! whatever the split.
#![no_main]
use std::sync::Arc;

use alarmscope::tcp::{CloseKind, Direction};
use alarmscope::time::Timestamp;
use alarmscope::tls::decrypt::{DecryptConfig, DecryptEvent, TlsDecryptor};
use alarmscope::tls::keylog::KeyLog;
use libfuzzer_sys::fuzz_target;

/// What a run handed on, owned.
#[derive(Debug, PartialEq)]
enum Ev {
    Plain(Direction, Vec<u8>),
    Gap(Direction, u64, bool),
    Stopped(Direction),
    Finding(String),
}

fn own(ev: DecryptEvent<'_>) -> Ev {
    match ev {
        DecryptEvent::Plain { dir, bytes, .. } => Ev::Plain(dir, bytes.to_vec()),
        DecryptEvent::Gap {
            dir, bytes, exact, ..
        } => Ev::Gap(dir, bytes, exact),
        DecryptEvent::Stopped { dir, .. } => Ev::Stopped(dir),
        DecryptEvent::Finding(f) => Ev::Finding(format!("{f:?}")),
    }
}

const BOUND: usize = 2 * (5 + 16384 + 2048 + (16 << 10));

fn run(keys: &Arc<KeyLog>, client: &[u8], server: &[u8], splits: &[u8], gaps: bool) -> Vec<Ev> {
    let mut dec = TlsDecryptor::new(DecryptConfig::default(), keys.clone());
    let mut evs = Vec::new();
    let (mut a, mut b) = (client, server);
    let mut t = 0i64;
    for (i, s) in splits.iter().enumerate() {
        let (dir, rest) = if i % 2 == 0 {
            (Direction::ClientToServer, &mut a)
        } else {
            (Direction::ServerToClient, &mut b)
        };
        t += 1;
        if gaps && s & 0x80 != 0 {
            dec.gap(dir, Timestamp(t), u64::from(s & 0x7f), &mut |e| evs.push(own(e)));
            continue;
        }
        let k = usize::from(*s).min(rest.len());
        dec.data(dir, Timestamp(t), &rest[..k], &mut |e| evs.push(own(e)));
        *rest = &rest[k..];
        assert!(dec.buffered_bytes() <= BOUND);
    }
    dec.data(Direction::ClientToServer, Timestamp(t), a, &mut |e| evs.push(own(e)));
    dec.data(Direction::ServerToClient, Timestamp(t), b, &mut |e| evs.push(own(e)));
    dec.close(Timestamp(t + 1), CloseKind::Open, &mut |e| evs.push(own(e)));
    let _ = dec.finish();
    evs
}

fuzz_target!(|input: (Vec<u8>, u16, Vec<u8>, Vec<u8>, Vec<u8>)| {
    let (log, cut, client, server, splits) = input;
    let whole = KeyLog::parse(&log);
    let mut pieces = KeyLog::default();
    let cut = usize::from(cut).min(log.len());
    pieces.feed(&log[..cut]);
    pieces.feed(&log[cut..]);
    pieces.finish();
    assert_eq!(whole.len(), pieces.len());
    assert_eq!(whole.warnings(), pieces.warnings());
    let keys = Arc::new(whole);
    let _ = run(&keys, &client, &server, &splits, true);
    // Without gaps, one direction after the other: the split must not matter.
    let one_by_one = |splits: &[u8]| {
        let mut dec = TlsDecryptor::new(DecryptConfig::default(), keys.clone());
        let mut evs = Vec::new();
        for (dir, mut rest) in [
            (Direction::ClientToServer, &client[..]),
            (Direction::ServerToClient, &server[..]),
        ] {
            for s in splits {
                let k = usize::from(*s).min(rest.len());
                dec.data(dir, Timestamp(0), &rest[..k], &mut |e| evs.push(own(e)));
                rest = &rest[k..];
            }
            dec.data(dir, Timestamp(0), rest, &mut |e| evs.push(own(e)));
        }
        merge(evs)
    };
    assert_eq!(one_by_one(&[]), one_by_one(&splits));
});

/// Adjacent plaintext of one direction joined: only the bytes, not the pieces, must agree.
fn merge(evs: Vec<Ev>) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for e in evs {
        match (out.last_mut(), e) {
            (Some(Ev::Plain(d0, b0)), Ev::Plain(d, b)) if *d0 == d => b0.extend_from_slice(&b),
            (_, e) => out.push(e),
        }
    }
    out
}
