//! Generate a large, realistic capture for the replay benchmark: many devices pushing ANPR
//! multipart events (anpr.xml + a ~10 KB plate picture + a ~100 KB scene picture) to one alarm
//! server, each on its own TCP connection, many connections interleaved, about 1% of requests
//! left unanswered and 1% answered 503.
//!
//! Usage: cargo run --release --example gen_capture -- OUT.pcap SIZE_MB [DEVICES]
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
    let args: Vec<String> = std::env::args().collect();
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
