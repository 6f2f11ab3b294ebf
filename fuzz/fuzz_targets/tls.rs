//! Two byte streams (device->server, server->device) through the TLS stage, whole and split at
//! fuzzer-chosen points with gaps at fuzzer-chosen places: nothing may panic, memory stays
//! bounded, and without gaps the report must not depend on the split.
#![no_main]
use alarmscope::tcp::{CloseKind, Direction, Side};
use alarmscope::time::Timestamp;
use alarmscope::tls::{TlsConfig, TlsConnection, TlsReport};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 4096;

fn run(client: &[u8], server: &[u8], splits: &[u8], gaps: bool) -> TlsReport {
    let config = TlsConfig {
        max_handshake_message: LIMIT,
        ..TlsConfig::default()
    };
    let mut c = TlsConnection::new(config);
    let (mut a, mut b) = (client, server);
    let mut t = 0i64;
    // Alternate directions, one fuzzer-chosen piece at a time; a split byte with the top bit
    // set is a gap of that many bytes when gaps are on.
    for (i, s) in splits.iter().enumerate() {
        let (dir, rest) = if i % 2 == 0 {
            (Direction::ClientToServer, &mut a)
        } else {
            (Direction::ServerToClient, &mut b)
        };
        t += 1;
        if gaps && s & 0x80 != 0 {
            c.gap(dir, Timestamp(t), u64::from(s & 0x7f));
            continue;
        }
        let k = usize::from(*s).min(rest.len());
        c.data(dir, Timestamp(t), &rest[..k]);
        *rest = &rest[k..];
        assert!(c.buffered_bytes() <= 2 * (LIMIT + 4 + 64));
    }
    c.data(Direction::ClientToServer, Timestamp(t), a);
    c.data(Direction::ServerToClient, Timestamp(t), b);
    c.close(Timestamp(t + 1), CloseKind::Fin(Side::Client));
    c.finish()
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>, Vec<u8>)| {
    let (client, server, splits) = input;
    let _ = run(&client, &server, &splits, true);
    // Without gaps, splitting each direction differently must not change the report as long
    // as the order of the two directions' bytes is the same: feed one direction at a time.
    let whole = {
        let mut c = TlsConnection::new(TlsConfig::default());
        c.data(Direction::ClientToServer, Timestamp(0), &client);
        c.data(Direction::ServerToClient, Timestamp(0), &server);
        c.close(Timestamp(1), CloseKind::Fin(Side::Client));
        c.finish()
    };
    let split = {
        let mut c = TlsConnection::new(TlsConfig::default());
        for (dir, mut rest) in [
            (Direction::ClientToServer, &client[..]),
            (Direction::ServerToClient, &server[..]),
        ] {
            for s in &splits {
                let k = usize::from(*s).min(rest.len());
                c.data(dir, Timestamp(0), &rest[..k]);
                rest = &rest[k..];
            }
            c.data(dir, Timestamp(0), rest);
        }
        c.close(Timestamp(1), CloseKind::Fin(Side::Client));
        c.finish()
    };
    assert_eq!(whole, split);
});
