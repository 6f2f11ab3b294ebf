//! Generate a large, realistic capture for the replay benchmarks, deterministic (same bytes on
//! every run). Two workloads:
//!
//! - bytes (`benches/replay.sh`): many devices pushing ANPR multipart events (anpr.xml + a ~10 KB
//!   plate picture + a ~100 KB scene picture) to one alarm server, each on its own TCP
//!   connection, many connections interleaved, about 1% of requests left unanswered and 1%
//!   answered 503.
//! - events (`--small`, `benches/scale.sh`): what a busy alarm server sees in a night, many small
//!   pushes of a few hundred bytes: camera motion / line crossing / intrusion as XML or JSON,
//!   access terminals' card events and heartbeats (bodies from the simulator, so they match what
//!   `simulate` sends), one connection per event or, with `--keepalive`, several events per
//!   connection; about 1% of requests unanswered (the device resets) and 0.5% answered 503.
//!
//! Usage: cargo run --release --example gen_capture -- OUT.pcap SIZE_MB [DEVICES]
//!        cargo run --release --example gen_capture -- --small EVENTS [--keepalive] OUT.pcap [DEVICES]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench/load tool, not the product: a panic is its failure report

use std::fs::File;
use std::io::{BufWriter, Write};

use alarmscope::capture::pcapwrite::PcapWriter;
use alarmscope::time::Timestamp;

const MSS: usize = 1448;
const SERVER: [u8; 4] = [10, 0, 0, 1];
const SERVER_PORT: u16 = 8080;

/// Small deterministic PRNG (xorshift) so the capture is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for c in chunks {
        let mut it = c.chunks_exact(2);
        for w in &mut it {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [b] = it.remainder() {
            sum += u32::from(*b) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[allow(clippy::too_many_arguments)]
fn frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + payload.len());
    f.extend_from_slice(&[
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x00, 0x66, 0x77, 0x88, 0x99, src[3], 0x08, 0x00,
    ]);
    let total = (20 + 20 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src);
    pseudo[4..8].copy_from_slice(&dst);
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    let c = checksum(&[&pseudo, &tcp, payload]);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f.extend_from_slice(payload);
    f
}

fn jpeg(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
    while v.len() < len - 2 {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(len - 2);
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

fn request(rng: &mut Rng, dev: u32, n: u64) -> Vec<u8> {
    let ip = format!("10.1.{}.{}", dev / 250, dev % 250 + 2);
    let plate = format!("AB{:04}", rng.below(10_000));
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\r\n<ipAddress>{ip}</ipAddress>\r\n<portNo>80</portNo>\r\n<protocol>HTTP</protocol>\r\n<macAddress>44:19:b6:{:02x}:{:02x}:{:02x}</macAddress>\r\n<channelID>1</channelID>\r\n<dateTime>2026-11-25T10:{:02}:{:02}+08:00</dateTime>\r\n<activePostCount>{n}</activePostCount>\r\n<eventType>ANPR</eventType>\r\n<eventState>active</eventState>\r\n<eventDescription>ANPR</eventDescription>\r\n<channelName>Gate {dev}</channelName>\r\n<ANPR>\r\n<country>3</country>\r\n<licensePlate>{plate}</licensePlate>\r\n<confidenceLevel>98</confidenceLevel>\r\n<plateType>unknown</plateType>\r\n<direction>forward</direction>\r\n</ANPR>\r\n</EventNotificationAlert>\r\n",
        (dev >> 16) & 0xff, (dev >> 8) & 0xff, dev & 0xff, (n / 60) % 60, n % 60
    );
    let plate_len = 8_000 + rng.below(4_000) as usize;
    let plate_pic = jpeg(rng, plate_len);
    let scene_len = 90_000 + rng.below(20_000) as usize;
    let scene = jpeg(rng, scene_len);
    let b = "MIME_boundary";
    let mut body = Vec::new();
    for (name, ctype, data) in [
        ("anpr.xml", "application/xml", xml.as_bytes()),
        ("licensePlatePicture.jpg", "image/jpeg", &plate_pic[..]),
        ("detectionPicture.jpg", "image/jpeg", &scene[..]),
    ] {
        let fname = if ctype == "image/jpeg" {
            format!("; filename=\"{name}\"")
        } else {
            String::new()
        };
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"{fname}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n", data.len())
                .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    let mut req = format!(
        "POST /alarm HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nAccept-Language: en-US\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\nContent-Type: multipart/form-data; boundary={b}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req
}

/// One connection's packets, produced lazily so many can be interleaved.
struct Flow {
    packets: std::vec::IntoIter<(bool, u32, u32, u8, std::ops::Range<usize>)>,
    data: Vec<u8>,
    dev_ip: [u8; 4],
    port: u16,
}

fn flow(rng: &mut Rng, dev: u32, n: u64, port: u16) -> Flow {
    let req = request(rng, dev, n);
    let fate = rng.below(100);
    let resp: &[u8] = match fate {
        0 => b"",
        1 => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        _ => b"HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    };
    let mut data = req.clone();
    let resp_start = data.len();
    data.extend_from_slice(resp);
    let (c_isn, s_isn) = (rng.next() as u32, rng.next() as u32);
    let mut p = Vec::new();
    // (from_client, seq, ack, flags, payload range)
    p.push((true, c_isn, 0, 0x02, 0..0));
    p.push((false, s_isn, c_isn.wrapping_add(1), 0x12, 0..0));
    p.push((
        true,
        c_isn.wrapping_add(1),
        s_isn.wrapping_add(1),
        0x10,
        0..0,
    ));
    let mut off = 0usize;
    let mut k = 0;
    while off < req.len() {
        let end = (off + MSS).min(req.len());
        p.push((
            true,
            c_isn.wrapping_add(1 + off as u32),
            s_isn.wrapping_add(1),
            0x18,
            off..end,
        ));
        off = end;
        k += 1;
        if k % 2 == 0 || off == req.len() {
            p.push((
                false,
                s_isn.wrapping_add(1),
                c_isn.wrapping_add(1 + off as u32),
                0x10,
                0..0,
            ));
        }
    }
    let c_end = c_isn.wrapping_add(1 + req.len() as u32);
    if resp.is_empty() {
        // Unanswered: the device gives up and resets.
        p.push((true, c_end, s_isn.wrapping_add(1), 0x14, 0..0));
    } else {
        p.push((
            false,
            s_isn.wrapping_add(1),
            c_end,
            0x18,
            resp_start..data.len(),
        ));
        let s_end = s_isn.wrapping_add(1 + resp.len() as u32);
        p.push((false, s_end, c_end, 0x11, 0..0));
        p.push((true, c_end, s_end.wrapping_add(1), 0x11, 0..0));
        p.push((
            false,
            s_end.wrapping_add(1),
            c_end.wrapping_add(1),
            0x10,
            0..0,
        ));
    }
    let dev_ip = [10, 1, (dev / 250) as u8, (dev % 250 + 2) as u8];
    Flow {
        packets: p.into_iter(),
        data,
        dev_ip,
        port,
    }
}

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--small") {
        let keepalive = args.iter().any(|a| a == "--keepalive");
        args.retain(|a| a != "--keepalive");
        if args.len() < 4 {
            eprintln!("usage: gen_capture --small EVENTS [--keepalive] OUT.pcap [DEVICES]");
            std::process::exit(2);
        }
        let events: u64 = args[2].parse().expect("EVENTS");
        let devices: u32 = args
            .get(4)
            .map(|d| d.parse().expect("DEVICES"))
            .unwrap_or(2000);
        return small::generate(&args[3], events, devices, keepalive);
    }
    if args.len() < 3 {
        eprintln!("usage: gen_capture OUT.pcap SIZE_MB [DEVICES]");
        std::process::exit(2);
    }
    let target = args[2].parse::<u64>().expect("SIZE_MB") << 20;
    let devices: u32 = args
        .get(3)
        .map(|d| d.parse().expect("DEVICES"))
        .unwrap_or(300);
    let mut w = PcapWriter::new(
        BufWriter::with_capacity(1 << 20, File::create(&args[1])?),
        1,
        65535,
        false,
    )?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut active: Vec<Flow> = Vec::new();
    let mut written: u64 = 24;
    let mut ts = Timestamp::from_micros(1_795_000_000, 0);
    let mut events = 0u64;
    let concurrency = 64;
    let mut port: u16 = 20_000;
    while written < target || !active.is_empty() {
        while written < target && active.len() < concurrency {
            let dev = rng.below(u64::from(devices)) as u32;
            port = if port >= 60_000 { 20_000 } else { port + 1 };
            events += 1;
            active.push(flow(&mut rng, dev, events, port));
        }
        let i = rng.below(active.len() as u64) as usize;
        let f = &mut active[i];
        match f.packets.next() {
            Some((from_client, seq, ack, flags, range)) => {
                let payload = &f.data[range];
                let bytes = if from_client {
                    frame(
                        f.dev_ip,
                        SERVER,
                        f.port,
                        SERVER_PORT,
                        seq,
                        ack,
                        flags,
                        payload,
                    )
                } else {
                    frame(
                        SERVER,
                        f.dev_ip,
                        SERVER_PORT,
                        f.port,
                        seq,
                        ack,
                        flags,
                        payload,
                    )
                };
                ts = Timestamp(ts.0 + 5_000 + rng.below(20_000) as i64);
                w.write_frame(ts, &bytes, bytes.len() as u32)?;
                written += 16 + bytes.len() as u64;
            }
            None => {
                active.swap_remove(i);
            }
        }
    }
    w.into_inner().flush()?;
    eprintln!(
        "wrote {} ({} MB, {events} events from up to {devices} devices)",
        args[1],
        written >> 20
    );
    Ok(())
}

/// The small-event workload (`--small`): many devices, small XML and JSON pushes.
mod small {
    use std::fs::File;
    use std::io::{BufWriter, Write};
    use std::net::{IpAddr, Ipv4Addr};

    use alarmscope::capture::pcapwrite::PcapWriter;
    use alarmscope::simulate::events::{
        build_push, request_bytes, BodyFormat, DeviceIdentity, EventKind, EventSpec,
    };
    use alarmscope::time::Timestamp;

    use super::{frame, Rng, MSS, SERVER, SERVER_PORT};

    /// Connections open at once in the capture (interleaved packet by packet).
    const CONCURRENCY: usize = 64;

    /// (from_client, seq, ack, flags, payload range in `Conn::data`)
    type Pkt = (bool, u32, u32, u8, std::ops::Range<usize>);

    struct Conn {
        packets: std::vec::IntoIter<Pkt>,
        data: Vec<u8>,
        dev_ip: [u8; 4],
        port: u16,
    }

    /// What device `dev` sends as its `n`-th event: cameras alternate motion, line crossing and
    /// intrusion (XML on three devices in four... JSON on the rest), access terminals send card
    /// events and, twice as often, heartbeats.
    fn kind(dev: u32, n: u64) -> (EventKind, BodyFormat) {
        const CAM: [EventKind; 3] = [
            EventKind::Vmd,
            EventKind::LineDetection,
            EventKind::FieldDetection,
        ];
        match dev % 4 {
            0 | 1 => (CAM[(n % 3) as usize], BodyFormat::Xml),
            2 => (CAM[(n % 2) as usize], BodyFormat::Json),
            _ if n.is_multiple_of(3) => (EventKind::AccessCard, BodyFormat::Json),
            _ => (EventKind::HeartBeat, BodyFormat::Json),
        }
    }

    const OK_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const OK_KEEP: &[u8] = b"HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n";
    const BUSY: &[u8] =
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    /// One connection carrying `count` events of device `dev` (1 without keep-alive). Stops early
    /// at an unanswered request (the device resets) or a 503 (the server closes).
    #[allow(clippy::too_many_arguments)]
    fn conn(
        rng: &mut Rng,
        ids: &[DeviceIdentity],
        dev: u32,
        seq: &mut u64,
        count: u64,
        port: u16,
        at: Timestamp,
        answered: &mut u64,
    ) -> (Conn, u64) {
        let (c_isn, s_isn) = (rng.next() as u32, rng.next() as u32);
        let mut data = Vec::new();
        let mut p: Vec<Pkt> = vec![
            (true, c_isn, 0, 0x02, 0..0),
            (false, s_isn, c_isn.wrapping_add(1), 0x12, 0..0),
            (
                true,
                c_isn.wrapping_add(1),
                s_isn.wrapping_add(1),
                0x10,
                0..0,
            ),
        ];
        let (mut c_off, mut s_off) = (1u32, 1u32);
        let mut sent = 0;
        let mut reset = false;
        let mut server_closes = false;
        while sent < count {
            sent += 1;
            *seq += 1;
            let (kind, format) = kind(dev, *seq / 7);
            let spec = EventSpec {
                kind,
                format,
                seq: *seq,
                active_post_count: 1,
                quirks: false,
                channel: None,
            };
            let id = &ids[dev as usize];
            let push = build_push(id, &spec, at);
            let req = request_bytes("10.0.0.1:8080", "/alarm", &push, at);
            let mut off = 0;
            while off < req.len() {
                let end = (off + MSS).min(req.len());
                let r = data.len() + off..data.len() + end;
                p.push((
                    true,
                    c_isn.wrapping_add(c_off),
                    s_isn.wrapping_add(s_off),
                    0x18,
                    r,
                ));
                c_off = c_off.wrapping_add((end - off) as u32);
                off = end;
            }
            data.extend_from_slice(&req);
            let fate = rng.below(1000);
            let resp = if fate < 10 {
                // Unanswered: the server ACKs the data, the device gives up and resets.
                p.push((
                    false,
                    s_isn.wrapping_add(s_off),
                    c_isn.wrapping_add(c_off),
                    0x10,
                    0..0,
                ));
                p.push((
                    true,
                    c_isn.wrapping_add(c_off),
                    s_isn.wrapping_add(s_off),
                    0x14,
                    0..0,
                ));
                reset = true;
                break;
            } else if fate < 15 {
                server_closes = true;
                BUSY
            } else if count > 1 && sent < count {
                OK_KEEP
            } else {
                server_closes = count == 1;
                if server_closes {
                    OK_CLOSE
                } else {
                    OK_KEEP
                }
            };
            *answered += 1;
            let r = data.len()..data.len() + resp.len();
            data.extend_from_slice(resp);
            p.push((
                false,
                s_isn.wrapping_add(s_off),
                c_isn.wrapping_add(c_off),
                0x18,
                r,
            ));
            s_off = s_off.wrapping_add(resp.len() as u32);
            if server_closes {
                break;
            }
        }
        if !reset {
            let (c_end, s_end) = (c_isn.wrapping_add(c_off), s_isn.wrapping_add(s_off));
            if server_closes {
                // The server closes after its answer (Connection: close).
                p.push((false, s_end, c_end, 0x11, 0..0));
                p.push((true, c_end, s_end.wrapping_add(1), 0x11, 0..0));
                p.push((
                    false,
                    s_end.wrapping_add(1),
                    c_end.wrapping_add(1),
                    0x10,
                    0..0,
                ));
            } else {
                // A keep-alive device closes when it has nothing more to send.
                p.push((true, c_end, s_end, 0x11, 0..0));
                p.push((false, s_end, c_end.wrapping_add(1), 0x11, 0..0));
                p.push((
                    true,
                    c_end.wrapping_add(1),
                    s_end.wrapping_add(1),
                    0x10,
                    0..0,
                ));
            }
        }
        let ip = ids[dev as usize].ip;
        let dev_ip = match ip {
            IpAddr::V4(v4) => v4.octets(),
            IpAddr::V6(_) => [10, 1, 0, 2],
        };
        (
            Conn {
                packets: p.into_iter(),
                data,
                dev_ip,
                port,
            },
            sent,
        )
    }

    /// Write `events` small pushes from `devices` devices to `out`.
    pub fn generate(out: &str, events: u64, devices: u32, keepalive: bool) -> std::io::Result<()> {
        let devices = devices.max(1);
        let ids: Vec<DeviceIdentity> = (0..devices)
            .map(|d| {
                let ip = Ipv4Addr::new(10, 1, (d / 250) as u8, (d % 250 + 2) as u8);
                DeviceIdentity::new(d, IpAddr::V4(ip))
            })
            .collect();
        let mut ports: Vec<u16> = (0..devices)
            .map(|d| 20_000 + (d % 97) as u16 * 300)
            .collect();
        let mut w = PcapWriter::new(
            BufWriter::with_capacity(1 << 20, File::create(out)?),
            1,
            65535,
            false,
        )?;
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut active: Vec<Conn> = Vec::new();
        let mut ts = Timestamp::from_micros(1_795_000_000, 0);
        let (mut seq, mut answered, mut packets, mut conns) = (0u64, 0u64, 0u64, 0u64);
        let mut bytes: u64 = 24;
        while seq < events || !active.is_empty() {
            while seq < events && active.len() < CONCURRENCY {
                let dev = rng.below(u64::from(devices)) as u32;
                let port = &mut ports[dev as usize];
                *port = if *port >= 60_000 { 20_000 } else { *port + 1 };
                let want = if keepalive {
                    (1 + rng.below(20)).min(events - seq)
                } else {
                    1
                };
                let (c, _) = conn(
                    &mut rng,
                    &ids,
                    dev,
                    &mut seq,
                    want,
                    *port,
                    ts,
                    &mut answered,
                );
                conns += 1;
                active.push(c);
            }
            let i = rng.below(active.len() as u64) as usize;
            let c = &mut active[i];
            match c.packets.next() {
                Some((from_client, s, a, flags, range)) => {
                    let payload = &c.data[range];
                    let f = if from_client {
                        frame(c.dev_ip, SERVER, c.port, SERVER_PORT, s, a, flags, payload)
                    } else {
                        frame(SERVER, c.dev_ip, SERVER_PORT, c.port, s, a, flags, payload)
                    };
                    // 2-12 us between packets: ~100 000 events/s on the wire.
                    ts = Timestamp(ts.0 + 2_000 + rng.below(10_000) as i64);
                    w.write_frame(ts, &f, f.len() as u32)?;
                    packets += 1;
                    bytes += 16 + f.len() as u64;
                }
                None => {
                    active.swap_remove(i);
                }
            }
        }
        w.into_inner().flush()?;
        eprintln!(
            "wrote {out} ({} MB, {packets} packets, {seq} events ({answered} answered) on {conns} connections from {devices} devices)",
            bytes >> 20
        );
        Ok(())
    }
}
