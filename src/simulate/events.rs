//! Pure event generation for the simulated devices: identities (MAC, serial, deviceID), XML and
//! JSON `EventNotificationAlert` bodies, multipart bodies with metadata part first and JPEG
//! pictures of realistic sizes, and the HTTP request a device sends. Deterministic: the same
//! device index and sequence number always give the same bytes, so tests can check them.

use std::net::IpAddr;

use clap::ValueEnum;
use serde::Serialize;

use crate::time::Timestamp;

/// Small deterministic generator (SplitMix64): variety without a `rand` dependency.
#[derive(Debug, Clone)]
pub struct Mix(u64);

impl Mix {
    /// Seeded from a device index and an event number.
    pub fn new(device: u32, seq: u64) -> Self {
        Mix((u64::from(device) << 40) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5151_AA00)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (hi >= lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let span = hi.saturating_sub(lo).saturating_add(1);
        lo.saturating_add(self.next_u64() % span.max(1))
    }

    /// Pick one element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let i = (self.next_u64() % items.len() as u64) as usize;
        items.get(i)
    }
}

/// Who a simulated device is: stable per index and distinct across indices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceIdentity {
    pub index: u32,
    pub mac: String,
    pub serial: String,
    /// `deviceID` in JSON bodies.
    pub device_id: String,
    /// The address the device reports in its bodies (`ipAddress`).
    pub ip: IpAddr,
    /// Minutes east of UTC used in `dateTime`.
    pub utc_offset_min: i32,
}

const OUIS: [[u8; 3]; 4] = [
    [0x44, 0x19, 0xb6],
    [0xc0, 0x56, 0xe3],
    [0xbc, 0xad, 0x28],
    [0x4c, 0xbd, 0x8f],
];
const OFFSETS: [i32; 5] = [480, 60, -300, 0, 330];

impl DeviceIdentity {
    /// Identity of device `index`, reporting `ip` in its bodies.
    pub fn new(index: u32, ip: IpAddr) -> Self {
        let oui = OUIS.get((index % 4) as usize).copied().unwrap_or(OUIS[0]);
        // Multiplying by an odd constant is a bijection modulo 2^24: distinct low 24 bits for
        // every index below 2^24 that still look random.
        let low = (index.wrapping_mul(0x9E_3779) ^ 0x5A_3C11) & 0xFF_FFFF;
        let mac = format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            oui[0],
            oui[1],
            oui[2],
            (low >> 16) & 0xff,
            (low >> 8) & 0xff,
            low & 0xff
        );
        let serial = format!(
            "DS-2CD2387G2-LU2023{:02}{:02}CCWR{:09}",
            1 + index % 12,
            1 + index % 28,
            520_000_000u64 + u64::from(index)
        );
        let mut m = Mix::new(index, u64::MAX);
        let a = m.next_u64();
        let b = m.next_u64();
        let device_id = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            // Last group carries the index so ids stay distinct whatever the hash does.
            (b & 0xffff_0000_0000) | u64::from(index)
        );
        let utc_offset_min = OFFSETS.get((index % 5) as usize).copied().unwrap_or(0);
        DeviceIdentity {
            index,
            mac,
            serial,
            device_id,
            ip,
            utc_offset_min,
        }
    }

    /// ISO 8601 local time with offset, as devices write `dateTime`.
    pub fn date_time(&self, at: Timestamp) -> String {
        let shifted = Timestamp(
            at.0.saturating_add(i64::from(self.utc_offset_min).saturating_mul(60_000_000_000)),
        );
        let s = shifted.to_utc_string(); // YYYY-MM-DD HH:MM:SS.mmm
        let base = s.get(..19).unwrap_or(&s).replacen(' ', "T", 1);
        let sign = if self.utc_offset_min < 0 { '-' } else { '+' };
        let off = self.utc_offset_min.unsigned_abs();
        format!("{base}{sign}{:02}:{:02}", off / 60, off % 60)
    }
}

/// RFC 7231 `Date` header value (`Tue, 07 May 2024 10:00:00 GMT`).
pub fn http_date(at: Timestamp) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let s = at.to_utc_string();
    let day_no = at.0.div_euclid(86_400_000_000_000);
    let wd = DAYS
        .get(day_no.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Thu");
    let year = s.get(0..4).unwrap_or("1970");
    let month: usize = s.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let mon = MONTHS
        .get(month.saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    let day = s.get(8..10).unwrap_or("01");
    let time = s.get(11..19).unwrap_or("00:00:00");
    format!("{wd}, {day} {mon} {year} {time} GMT")
}

/// The kinds of event a simulated device sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventKind {
    /// Motion detection (`VMD`).
    Vmd,
    /// Line crossing with a `DetectionRegionList`.
    LineDetection,
    /// Intrusion (`fielddetection`) with a region polygon and target rectangle.
    FieldDetection,
    /// People counting statistics.
    PeopleCounting,
    /// Plate camera: multipart `anpr.xml` + `licensePlatePicture.jpg` + `detectionPicture.jpg`.
    Anpr,
    /// Face capture camera: multipart `faceSnap.xml` + `faceImage.jpg` + `backgroundImage.jpg`.
    FaceSnap,
    /// Access terminal, face verified: multipart JSON `AccessControllerEvent` + face `Picture`.
    AccessFace,
    /// Access terminal, card swiped: multipart with only the JSON `event_log` part.
    AccessCard,
    /// Access terminal heartbeat (event subscription), plain JSON.
    HeartBeat,
}

impl EventKind {
    /// `eventType` on the wire.
    pub fn event_type(self) -> &'static str {
        match self {
            EventKind::Vmd => "VMD",
            EventKind::LineDetection => "linedetection",
            EventKind::FieldDetection => "fielddetection",
            EventKind::PeopleCounting => "PeopleCounting",
            EventKind::Anpr => "ANPR",
            EventKind::FaceSnap => "faceSnap",
            EventKind::AccessFace | EventKind::AccessCard => "AccessControllerEvent",
            EventKind::HeartBeat => "heartBeat",
        }
    }
}

/// Metadata encoding for camera events (ANPR/face are XML, access/heartbeat JSON, always).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BodyFormat {
    Xml,
    Json,
}

/// `--kind`: what to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
pub enum KindArg {
    /// Camera events as XML: VMD, linedetection, fielddetection, PeopleCounting.
    Xml,
    /// The same camera events as JSON.
    Json,
    /// Plate camera multipart events with two pictures.
    Anpr,
    /// Face capture multipart events with two pictures.
    Face,
    /// Access terminal events (face with `Picture`, card swipe).
    Access,
    /// Access terminal heartbeats.
    Heartbeat,
    /// A mix of everything.
    Mixed,
}

const CAMERA: [EventKind; 4] = [
    EventKind::Vmd,
    EventKind::LineDetection,
    EventKind::FieldDetection,
    EventKind::PeopleCounting,
];
const MIXED: [(EventKind, BodyFormat); 10] = [
    (EventKind::Vmd, BodyFormat::Xml),
    (EventKind::LineDetection, BodyFormat::Xml),
    (EventKind::Anpr, BodyFormat::Xml),
    (EventKind::AccessFace, BodyFormat::Json),
    (EventKind::FieldDetection, BodyFormat::Json),
    (EventKind::HeartBeat, BodyFormat::Json),
    (EventKind::FaceSnap, BodyFormat::Xml),
    (EventKind::PeopleCounting, BodyFormat::Xml),
    (EventKind::AccessCard, BodyFormat::Json),
    (EventKind::Vmd, BodyFormat::Json),
];

impl KindArg {
    /// The `n`-th distinct event of a device sending this kind.
    pub fn pick(self, n: u64) -> (EventKind, BodyFormat) {
        let at = |len: usize| (n % len as u64) as usize;
        match self {
            KindArg::Xml => (
                CAMERA
                    .get(at(CAMERA.len()))
                    .copied()
                    .unwrap_or(EventKind::Vmd),
                BodyFormat::Xml,
            ),
            KindArg::Json => (
                CAMERA
                    .get(at(CAMERA.len()))
                    .copied()
                    .unwrap_or(EventKind::Vmd),
                BodyFormat::Json,
            ),
            KindArg::Anpr => (EventKind::Anpr, BodyFormat::Xml),
            KindArg::Face => (EventKind::FaceSnap, BodyFormat::Xml),
            KindArg::Access => {
                let k = if n % 3 == 2 {
                    EventKind::AccessCard
                } else {
                    EventKind::AccessFace
                };
                (k, BodyFormat::Json)
            }
            KindArg::Heartbeat => (EventKind::HeartBeat, BodyFormat::Json),
            KindArg::Mixed => MIXED
                .get(at(MIXED.len()))
                .copied()
                .unwrap_or((EventKind::Vmd, BodyFormat::Xml)),
        }
    }
}

/// One push body, ready to be framed as an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub event_type: &'static str,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Number of multipart parts (0 for a plain body).
    pub parts: usize,
    /// Bytes of picture data in the body.
    pub picture_bytes: usize,
}

/// What to generate for one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpec {
    pub kind: EventKind,
    pub format: BodyFormat,
    /// Global sequence number (also seeds the variety).
    pub seq: u64,
    /// 1 for a new event, 2.. for the repeats a camera sends while the event lasts.
    pub active_post_count: u32,
    /// Add the malformed or odd bodies seen in the field (raw `&`, missing declaration, empty
    /// elements, text/plain).
    pub quirks: bool,
    /// The channel the event happened on, when a trigger fixes it (`--serve-isapi`); None picks
    /// one of 1..4 (XML) or 1 (JSON) as before.
    pub channel: Option<u32>,
}

/// A JPEG of the given dimensions and (approximately, at least) `size` bytes: a valid baseline
/// greyscale image (every 8x8 block flat mid-grey) padded with comment segments, so extracted
/// pictures open in a viewer and sizes match what cameras send.
pub fn jpeg(width: u16, height: u16, size: usize) -> Vec<u8> {
    let mut j = Vec::with_capacity(size.saturating_add(64));
    j.extend_from_slice(&[0xFF, 0xD8]);
    // APP0 JFIF
    j.extend_from_slice(&[
        0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    // DQT: table 0, all ones
    j.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
    j.extend_from_slice(&[1u8; 64]);
    // SOF0: 8-bit, height, width, one component (id 1, 1x1, table 0)
    let [hh, hl] = height.max(1).to_be_bytes();
    let [wh, wl] = width.max(1).to_be_bytes();
    j.extend_from_slice(&[
        0xFF, 0xC0, 0x00, 0x0B, 0x08, hh, hl, wh, wl, 0x01, 0x01, 0x11, 0x00,
    ]);
    // DHT: DC table 0 and AC table 0, each a single 1-bit code for symbol 0 (DC diff 0 / EOB).
    for class in [0x00u8, 0x10] {
        j.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, class, 1]);
        j.extend_from_slice(&[0u8; 15]);
        j.push(0x00);
    }
    // Padding comments before the scan, to reach the wanted size.
    let blocks = usize::from(width.max(1))
        .div_ceil(8)
        .saturating_mul(usize::from(height.max(1)).div_ceil(8));
    let scan_len = blocks.saturating_mul(2).div_ceil(8);
    let fixed = j
        .len()
        .saturating_add(10)
        .saturating_add(scan_len)
        .saturating_add(2);
    let mut pad = size.saturating_sub(fixed);
    let mut fill = 0u8;
    while pad > 4 {
        let n = pad.saturating_sub(4).min(65_533);
        let [lh, ll] = u16::try_from(n.saturating_add(2))
            .unwrap_or(u16::MAX)
            .to_be_bytes();
        j.extend_from_slice(&[0xFF, 0xFE, lh, ll]);
        j.extend((0..n).map(|i| b'A' + ((i as u8).wrapping_add(fill)) % 26));
        fill = fill.wrapping_add(7);
        pad = pad.saturating_sub(n.saturating_add(4));
    }
    // SOS, then two zero bits per block, padded with ones.
    j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    let bits = blocks.saturating_mul(2);
    j.extend(std::iter::repeat_n(0u8, bits / 8));
    if bits % 8 != 0 {
        j.push(0xFFu8 >> (bits % 8));
    }
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

fn xml_head(
    id: &DeviceIdentity,
    spec: &EventSpec,
    m: &mut Mix,
    at: Timestamp,
    description: &str,
    channel: &str,
) -> String {
    let ns = if spec.seq % 3 == 1 {
        "http://www.isapi.org/ver20/XMLSchema"
    } else {
        "http://www.hikvision.com/ver20/XMLSchema"
    };
    let quirk = if spec.quirks { spec.seq % 4 } else { 99 };
    let decl = if quirk == 0 {
        ""
    } else {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    };
    let ip_el = match id.ip {
        IpAddr::V4(ip) => format!("<ipAddress>{ip}</ipAddress>"),
        IpAddr::V6(ip) => format!("<ipv6Address>{ip}</ipv6Address>"),
    };
    let proto = if quirk == 2 {
        "<protocolType>HTTP</protocolType>"
    } else {
        "<protocol>HTTP</protocol>"
    };
    let apc = if quirk == 1 {
        "<activePostCount/>".to_string()
    } else {
        format!(
            "<activePostCount>{}</activePostCount>",
            spec.active_post_count
        )
    };
    let channel = if quirk == 3 {
        format!("{channel} & Gate")
    } else {
        channel.to_string()
    };
    // Drawn even when the channel is fixed, so the rest of the body stays the same.
    let drawn = m.range(1, 4);
    let chan_no = spec.channel.map_or(drawn, u64::from);
    format!(
        "{decl}<EventNotificationAlert version=\"2.0\" xmlns=\"{ns}\">\n{ip_el}\n<portNo>80</portNo>\n{proto}\n\
         <macAddress>{}</macAddress>\n<channelID>{chan_no}</channelID>\n<dateTime>{}</dateTime>\n{apc}\n\
         <eventType>{}</eventType>\n<eventState>active</eventState>\n<eventDescription>{description}</eventDescription>\n\
         <channelName>{channel}</channelName>\n",
        id.mac,
        id.date_time(at),
        spec.kind.event_type()
    )
}

fn rect(m: &mut Mix) -> (f64, f64, f64, f64) {
    let w = m.range(40, 200) as f64 / 1000.0;
    let h = m.range(80, 400) as f64 / 1000.0;
    let x = m.range(0, 1000 - (w * 1000.0) as u64) as f64 / 1000.0;
    let y = m.range(0, 1000 - (h * 1000.0) as u64) as f64 / 1000.0;
    (x, y, w, h)
}

fn camera_xml(id: &DeviceIdentity, spec: &EventSpec, at: Timestamp) -> String {
    let mut m = Mix::new(id.index, spec.seq);
    let channel = *m
        .pick(&[
            "Camera 01",
            "Entrance",
            "Parking North",
            "Loading Bay",
            "Lobby",
        ])
        .unwrap_or(&"Camera 01");
    let (desc, tail) = match spec.kind {
        EventKind::LineDetection => {
            let (x, y, w, h) = rect(&mut m);
            let (x1, y1, x2, y2) = (
                m.range(50, 300),
                m.range(300, 700),
                m.range(600, 950),
                m.range(300, 700),
            );
            (
                "linedetection alarm",
                format!(
                    "<DetectionRegionList>\n<DetectionRegionEntry>\n<regionID>1</regionID>\n<sensitivityLevel>{}</sensitivityLevel>\n\
                     <RegionCoordinatesList>\n<RegionCoordinates><positionX>{x1}</positionX><positionY>{y1}</positionY></RegionCoordinates>\n\
                     <RegionCoordinates><positionX>{x2}</positionX><positionY>{y2}</positionY></RegionCoordinates>\n</RegionCoordinatesList>\n\
                     <detectionTarget>{}</detectionTarget>\n<TargetRect><X>{x:.3}</X><Y>{y:.3}</Y><width>{w:.3}</width><height>{h:.3}</height></TargetRect>\n\
                     </DetectionRegionEntry>\n</DetectionRegionList>\n<crossDirection>{}</crossDirection>\n<isDataRetransmission>false</isDataRetransmission>\n",
                    m.range(40, 100),
                    m.pick(&["human", "vehicle"]).unwrap_or(&"human"),
                    m.pick(&["bothDirection", "leftToRight", "rightToLeft"]).unwrap_or(&"bothDirection"),
                ),
            )
        }
        EventKind::FieldDetection => {
            let (x, y, w, h) = rect(&mut m);
            let pts: Vec<String> = [(100u64, 150u64), (880, 140), (900, 860), (120, 880)]
                .iter()
                .map(|(px, py)| {
                    let dx = m.range(0, 40);
                    let dy = m.range(0, 40);
                    format!("<RegionCoordinates><positionX>{}</positionX><positionY>{}</positionY></RegionCoordinates>", px + dx, py + dy)
                })
                .collect();
            (
                "fielddetection alarm",
                format!(
                    "<DetectionRegionList>\n<DetectionRegionEntry>\n<regionID>{}</regionID>\n<sensitivityLevel>{}</sensitivityLevel>\n\
                     <RegionCoordinatesList>\n{}\n</RegionCoordinatesList>\n<detectionTarget>human</detectionTarget>\n\
                     <TargetRect><X>{x:.3}</X><Y>{y:.3}</Y><width>{w:.3}</width><height>{h:.3}</height></TargetRect>\n\
                     </DetectionRegionEntry>\n</DetectionRegionList>\n<isDataRetransmission>false</isDataRetransmission>\n",
                    m.range(1, 4),
                    m.range(40, 100),
                    pts.join("\n")
                ),
            )
        }
        EventKind::PeopleCounting => {
            let enter = spec.seq.saturating_mul(3).saturating_add(m.range(0, 5));
            let exit = enter.saturating_sub(m.range(0, 4));
            (
                "peopleCounting alarm",
                format!(
                    "<peopleCounting>\n<statisticalMethods>realTime</statisticalMethods>\n<RealTime><time>{}</time></RealTime>\n\
                     <enter>{enter}</enter>\n<exit>{exit}</exit>\n<pass>{}</pass>\n</peopleCounting>\n",
                    id.date_time(at),
                    m.range(0, 3)
                ),
            )
        }
        _ => ("Motion alarm", String::new()),
    };
    let mut s = xml_head(id, spec, &mut m, at, desc, channel);
    s.push_str(&tail);
    s.push_str("</EventNotificationAlert>\n");
    s
}

fn base_json(
    id: &DeviceIdentity,
    spec: &EventSpec,
    at: Timestamp,
    description: &str,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    let mut m = Mix::new(id.index, spec.seq);
    let a = m.next_u64();
    let uuid = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        spec.seq & 0xffff,
        u64::from(id.index)
    );
    let mut o = serde_json::Map::new();
    match id.ip {
        IpAddr::V4(ip) => o.insert("ipAddress".into(), json!(ip.to_string())),
        IpAddr::V6(ip) => o.insert("ipv6Address".into(), json!(ip.to_string())),
    };
    o.insert("portNo".into(), json!(80));
    o.insert("protocol".into(), json!("HTTP"));
    o.insert("macAddress".into(), json!(id.mac));
    o.insert("channelID".into(), json!(spec.channel.unwrap_or(1)));
    o.insert("dateTime".into(), json!(id.date_time(at)));
    o.insert("activePostCount".into(), json!(spec.active_post_count));
    o.insert("eventType".into(), json!(spec.kind.event_type()));
    o.insert("eventState".into(), json!("active"));
    o.insert("eventDescription".into(), json!(description));
    o.insert("deviceID".into(), json!(id.device_id));
    o.insert("uuid".into(), json!(uuid));
    o
}

fn camera_json(id: &DeviceIdentity, spec: &EventSpec, at: Timestamp) -> String {
    use serde_json::json;
    let mut m = Mix::new(id.index, spec.seq ^ 0xABCD);
    let desc = match spec.kind {
        EventKind::LineDetection => "linedetection alarm",
        EventKind::FieldDetection => "fielddetection alarm",
        EventKind::PeopleCounting => "peopleCounting alarm",
        _ => "Motion alarm",
    };
    let mut o = base_json(id, spec, at, desc);
    o.insert(
        "channelName".into(),
        json!(m
            .pick(&["Camera 01", "Yard", "Corridor"])
            .unwrap_or(&"Camera 01")),
    );
    match spec.kind {
        EventKind::LineDetection | EventKind::FieldDetection => {
            let (x, y, w, h) = rect(&mut m);
            o.insert(
                "DetectionRegionList".into(),
                json!([{ "regionID": 1, "sensitivityLevel": m.range(40, 100), "detectionTarget": "human",
                    "RegionCoordinatesList": [{"positionX": m.range(50, 300), "positionY": m.range(300, 700)},
                                              {"positionX": m.range(600, 950), "positionY": m.range(300, 700)}],
                    "TargetRect": {"X": x, "Y": y, "width": w, "height": h} }]),
            );
        }
        EventKind::PeopleCounting => {
            let enter = spec.seq.saturating_mul(2);
            o.insert("peopleCounting".into(), json!({"statisticalMethods": "realTime", "enter": enter, "exit": enter / 2, "pass": 0}));
        }
        _ => {}
    }
    serde_json::Value::Object(o).to_string()
}

fn plate(m: &mut Mix) -> String {
    const L: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    let mut p = String::new();
    for i in 0..7 {
        let c = if (2..5).contains(&i) {
            char::from(b'0' + (m.next_u64() % 10) as u8)
        } else {
            char::from(
                *L.get((m.next_u64() % L.len() as u64) as usize)
                    .unwrap_or(&b'A'),
            )
        };
        p.push(c);
    }
    p
}

fn part(
    out: &mut Vec<u8>,
    boundary: &str,
    name: &str,
    filename: Option<&str>,
    ctype: &str,
    data: &[u8],
) {
    out.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
    );
    if let Some(f) = filename {
        out.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn anpr_xml(
    id: &DeviceIdentity,
    spec: &EventSpec,
    at: Timestamp,
    m: &mut Mix,
    plate_text: &str,
) -> String {
    let mut s = xml_head(id, spec, m, at, "ANPR", "Entrance Lane 1");
    let conf = m.range(80, 99);
    let uuid = format!("{:016x}{:016x}", m.next_u64(), spec.seq);
    let stamp = id
        .date_time(at)
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect::<String>();
    s.push_str(&format!(
        "<ANPR>\n<country>3</country>\n<licensePlate>{plate_text}</licensePlate>\n<line>{}</line>\n<direction>{}</direction>\n\
         <confidenceLevel>{conf}</confidenceLevel>\n<plateType>unknown</plateType>\n<plateColor>{}</plateColor>\n<licenseBright>0</licenseBright>\n\
         <dangmark>no</dangmark>\n<twoWheelVehicle>no</twoWheelVehicle>\n<threeWheelVehicle>no</threeWheelVehicle>\n\
         <plateCharBelieve>{}</plateCharBelieve>\n<speedLimit>0</speedLimit>\n<vehicleType>vehicle</vehicleType>\n<detectDir>8</detectDir>\n\
         <vehicleInfo>\n<index>{}</index>\n<colorDepth>2</colorDepth>\n<color>{}</color>\n<length>0</length>\n<vehicleLogoRecog>{}</vehicleLogoRecog>\n</vehicleInfo>\n\
         <pictureInfoList>\n<pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type><dataType>0</dataType>\
         <absTime>{stamp}000</absTime><plateRect><X>{}</X><Y>{}</Y><width>{}</width><height>{}</height></plateRect></pictureInfo>\n\
         <pictureInfo><fileName>detectionPicture.jpg</fileName><type>detectionPicture</type><dataType>0</dataType><absTime>{stamp}000</absTime></pictureInfo>\n\
         </pictureInfoList>\n<originalLicensePlate>{plate_text}</originalLicensePlate>\n<vehicleListName>{}</vehicleListName>\n</ANPR>\n\
         <UUID>{}</UUID>\n<picNum>2</picNum>\n<isDataRetransmission>false</isDataRetransmission>\n</EventNotificationAlert>\n",
        m.range(1, 2),
        m.pick(&["forward", "reverse"]).unwrap_or(&"forward"),
        m.pick(&["white", "yellow", "blue"]).unwrap_or(&"white"),
        (0..plate_text.len()).map(|_| m.range(85, 99).to_string()).collect::<Vec<_>>().join(","),
        spec.seq,
        m.pick(&["white", "black", "gray", "red", "blue"]).unwrap_or(&"white"),
        m.range(1000, 1100),
        m.range(300, 600),
        m.range(500, 800),
        m.range(80, 140),
        m.range(25, 45),
        m.pick(&["otherList", "allowList", "blockList"]).unwrap_or(&"otherList"),
        uuid
    ));
    s
}

/// Build the body of one post.
pub fn build_push(id: &DeviceIdentity, spec: &EventSpec, at: Timestamp) -> Push {
    let mut m = Mix::new(id.index, spec.seq.wrapping_add(0x77));
    let xml_type = *m
        .pick(&[
            "application/xml; charset=\"UTF-8\"",
            "application/xml",
            "text/xml",
        ])
        .unwrap_or(&"application/xml");
    let boundary = *m
        .pick(&["boundary", "MIME_boundary", "AaB03x"])
        .unwrap_or(&"boundary");
    let multipart_type = format!("multipart/form-data; boundary={boundary}");
    let jpeg_type = if spec.quirks && spec.seq % 2 == 1 {
        "image/pjpeg"
    } else {
        "image/jpeg"
    };
    match (spec.kind, spec.format) {
        (
            EventKind::Vmd
            | EventKind::LineDetection
            | EventKind::FieldDetection
            | EventKind::PeopleCounting,
            BodyFormat::Xml,
        ) => {
            let body = camera_xml(id, spec, at).into_bytes();
            Push {
                event_type: spec.kind.event_type(),
                content_type: xml_type.into(),
                body,
                parts: 0,
                picture_bytes: 0,
            }
        }
        (
            EventKind::Vmd
            | EventKind::LineDetection
            | EventKind::FieldDetection
            | EventKind::PeopleCounting,
            BodyFormat::Json,
        ) => {
            let ct = if spec.quirks && spec.seq.is_multiple_of(2) {
                "text/plain"
            } else {
                "application/json"
            };
            Push {
                event_type: spec.kind.event_type(),
                content_type: ct.into(),
                body: camera_json(id, spec, at).into_bytes(),
                parts: 0,
                picture_bytes: 0,
            }
        }
        (EventKind::Anpr, _) => {
            let plate_text = plate(&mut m);
            let meta = anpr_xml(id, spec, at, &mut m, &plate_text);
            let p1 = jpeg(
                m.range(200, 320) as u16,
                m.range(60, 100) as u16,
                m.range(3_000, 12_000) as usize,
            );
            let p2 = jpeg(2688, 1520, m.range(180_000, 450_000) as usize);
            let name = if spec.seq.is_multiple_of(2) {
                "anpr.xml"
            } else {
                "ANPR.xml"
            };
            let mut body = Vec::with_capacity(meta.len() + p1.len() + p2.len() + 600);
            part(
                &mut body,
                boundary,
                name,
                Some(name),
                "text/xml",
                meta.as_bytes(),
            );
            part(
                &mut body,
                boundary,
                "licensePlatePicture.jpg",
                Some("licensePlatePicture.jpg"),
                jpeg_type,
                &p1,
            );
            part(
                &mut body,
                boundary,
                "detectionPicture.jpg",
                Some("detectionPicture.jpg"),
                jpeg_type,
                &p2,
            );
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            Push {
                event_type: "ANPR",
                content_type: multipart_type,
                body,
                parts: 3,
                picture_bytes: p1.len() + p2.len(),
            }
        }
        (EventKind::FaceSnap, _) => {
            let mut meta = xml_head(id, spec, &mut m, at, "faceSnap alarm", "Reception");
            let (x, y, w, h) = rect(&mut m);
            meta.push_str(&format!(
                "<faceSnap>\n<faceId>{}</faceId>\n<FaceRect><X>{x:.3}</X><Y>{y:.3}</Y><width>{w:.3}</width><height>{h:.3}</height></FaceRect>\n\
                 <age><ageGroup>{}</ageGroup></age>\n<gender>{}</gender>\n<glass>no</glass>\n<smile>no</smile>\n<mask>{}</mask>\n</faceSnap>\n\
                 <picNum>2</picNum>\n</EventNotificationAlert>\n",
                spec.seq,
                m.pick(&["young", "middle", "old"]).unwrap_or(&"middle"),
                m.pick(&["male", "female"]).unwrap_or(&"male"),
                m.pick(&["yes", "no"]).unwrap_or(&"no"),
            ));
            let face = jpeg(160, 200, m.range(12_000, 40_000) as usize);
            let bg = jpeg(1920, 1080, m.range(150_000, 350_000) as usize);
            let mut body = Vec::with_capacity(meta.len() + face.len() + bg.len() + 600);
            part(
                &mut body,
                boundary,
                "faceSnap.xml",
                Some("faceSnap.xml"),
                "application/xml",
                meta.as_bytes(),
            );
            part(
                &mut body,
                boundary,
                "faceImage.jpg",
                Some("faceImage.jpg"),
                jpeg_type,
                &face,
            );
            part(
                &mut body,
                boundary,
                "backgroundImage.jpg",
                Some("backgroundImage.jpg"),
                jpeg_type,
                &bg,
            );
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            Push {
                event_type: "faceSnap",
                content_type: multipart_type,
                body,
                parts: 3,
                picture_bytes: face.len() + bg.len(),
            }
        }
        (EventKind::AccessFace | EventKind::AccessCard, _) => {
            use serde_json::json;
            let face = spec.kind == EventKind::AccessFace;
            let mut o = base_json(id, spec, at, "Access Controller Event");
            let employee = m.range(1001, 1250);
            let serial_no = spec.seq.saturating_add(400);
            let mut ace = json!({
                "deviceName": "Access Controller",
                "majorEventType": 5,
                "subEventType": if face { 75 } else { 1 },
                "cardReaderKind": 1,
                "cardReaderNo": 1,
                "verifyNo": m.range(100, 999),
                "employeeNoString": employee.to_string(),
                "serialNo": serial_no,
                "userType": "normal",
                "currentVerifyMode": if face { "cardOrFace" } else { "card" },
                "frontSerialNo": serial_no.saturating_sub(1),
                "attendanceStatus": "undefined",
                "label": "",
                "mask": "no",
                "picturesNumber": if face { 1 } else { 0 },
                "purePwdVerifyEnable": true,
            });
            if face {
                let (x, y, w, h) = rect(&mut m);
                ace["name"] = json!(format!("Employee {employee}"));
                ace["FaceRect"] = json!({"height": h, "width": w, "x": x, "y": y});
            } else {
                ace["cardNo"] = json!(format!("{:010}", m.range(1_000_000_000, 4_000_000_000)));
                ace["cardType"] = json!(1);
            }
            o.insert("AccessControllerEvent".into(), ace);
            let meta = serde_json::Value::Object(o).to_string();
            let boundary = "MIME_boundary";
            let mut body = Vec::new();
            let (name, pic_bytes, parts) = if face {
                let pic = jpeg(480, 640, m.range(25_000, 90_000) as usize);
                part(
                    &mut body,
                    boundary,
                    "AccessControllerEvent",
                    None,
                    "application/json",
                    meta.as_bytes(),
                );
                part(
                    &mut body,
                    boundary,
                    "Picture",
                    Some("Picture.jpg"),
                    jpeg_type,
                    &pic,
                );
                ("AccessControllerEvent", pic.len(), 2)
            } else {
                part(
                    &mut body,
                    boundary,
                    "event_log",
                    None,
                    "application/json",
                    meta.as_bytes(),
                );
                ("event_log", 0, 1)
            };
            let _ = name;
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            Push {
                event_type: "AccessControllerEvent",
                content_type: format!("multipart/form-data; boundary={boundary}"),
                body,
                parts,
                picture_bytes: pic_bytes,
            }
        }
        (EventKind::HeartBeat, _) => {
            let mut o = base_json(id, spec, at, "heartBeat");
            o.insert("channelID".into(), serde_json::json!(""));
            let body = serde_json::Value::Object(o).to_string().into_bytes();
            Push {
                event_type: "heartBeat",
                content_type: "application/json".into(),
                body,
                parts: 0,
                picture_bytes: 0,
            }
        }
    }
}

/// The HTTP request a device sends for a push: the headers the vendor documents, keep-alive.
pub fn request_bytes(host: &str, path: &str, push: &Push, at: Timestamp) -> Vec<u8> {
    request_bytes_auth(host, path, push, at, None)
}

/// [`request_bytes`] with an `Authorization` header (the alarm host slot's credentials).
pub fn request_bytes_auth(
    host: &str,
    path: &str,
    push: &Push,
    at: Timestamp,
    authorization: Option<&str>,
) -> Vec<u8> {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Language: en-US\r\nDate: {}\r\n{auth}Content-Type: {}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        http_date(at),
        push.content_type,
        push.body.len()
    )
    .into_bytes();
    r.extend_from_slice(&push.body);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    fn ip(i: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))
    }

    // 2024-05-07 10:00:00 UTC, a Tuesday.
    const T: Timestamp = Timestamp(1_715_076_000_000_000_000);

    #[test]
    fn identities_are_distinct() {
        let mut macs = HashSet::new();
        let mut ids = HashSet::new();
        let mut serials = HashSet::new();
        for i in 0..2000 {
            let d = DeviceIdentity::new(i, ip(2));
            assert_eq!(d.mac.len(), 17);
            assert!(macs.insert(d.mac.clone()), "duplicate mac {}", d.mac);
            assert!(ids.insert(d.device_id.clone()));
            assert!(serials.insert(d.serial.clone()));
        }
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(T), "Tue, 07 May 2024 10:00:00 GMT");
        assert_eq!(http_date(Timestamp(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        let d0 = DeviceIdentity::new(0, ip(2)); // +08:00
        assert_eq!(d0.date_time(T), "2024-05-07T18:00:00+08:00");
        let d2 = DeviceIdentity::new(2, ip(2)); // -05:00
        assert_eq!(d2.date_time(T), "2024-05-07T05:00:00-05:00");
        let d4 = DeviceIdentity::new(4, ip(2)); // +05:30
        assert_eq!(d4.date_time(T), "2024-05-07T15:30:00+05:30");
    }

    #[test]
    fn jpeg_has_markers_size_and_dimensions() {
        for (w, h, size) in [
            (8u16, 8u16, 0usize),
            (2688, 1520, 300_000),
            (240, 80, 5_000),
            (1920, 1080, 70_000),
        ] {
            let j = jpeg(w, h, size);
            assert_eq!(&j[..4], &[0xFF, 0xD8, 0xFF, 0xE0]);
            assert_eq!(&j[j.len() - 2..], &[0xFF, 0xD9]);
            // SOF0 carries the dimensions.
            let sof = j.windows(2).position(|x| x == [0xFF, 0xC0]).unwrap();
            assert_eq!(u16::from_be_bytes([j[sof + 5], j[sof + 6]]), h);
            assert_eq!(u16::from_be_bytes([j[sof + 7], j[sof + 8]]), w);
            if size > 2000 {
                assert!(
                    j.len() >= size - 4 && j.len() <= size + 4,
                    "{} vs {size}",
                    j.len()
                );
            }
        }
        // 8x8: one block, 2 bits "00" padded with ones = 0x3F.
        let j = jpeg(8, 8, 0);
        assert_eq!(&j[j.len() - 3..], &[0x3F, 0xFF, 0xD9]);
    }

    fn spec(kind: EventKind, format: BodyFormat, seq: u64) -> EventSpec {
        EventSpec {
            kind,
            format,
            seq,
            active_post_count: 1,
            quirks: false,
            channel: None,
        }
    }

    fn xml_text<'a>(body: &'a str, el: &str) -> Option<&'a str> {
        let open = format!("<{el}>");
        let s = body.find(&open)? + open.len();
        let e = body[s..].find(&format!("</{el}>"))? + s;
        Some(&body[s..e])
    }

    #[test]
    fn camera_xml_bodies_are_well_formed_and_carry_identity() {
        let d = DeviceIdentity::new(3, ip(5));
        for (k, desc) in [
            (EventKind::Vmd, "Motion alarm"),
            (EventKind::LineDetection, "linedetection alarm"),
            (EventKind::FieldDetection, "fielddetection alarm"),
            (EventKind::PeopleCounting, "peopleCounting alarm"),
        ] {
            let p = build_push(&d, &spec(k, BodyFormat::Xml, 7), T);
            let body = String::from_utf8(p.body.clone()).unwrap();
            assert!(p.content_type.contains("xml"));
            assert_eq!(xml_text(&body, "eventType"), Some(k.event_type()));
            assert_eq!(xml_text(&body, "eventDescription"), Some(desc));
            assert_eq!(xml_text(&body, "macAddress"), Some(d.mac.as_str()));
            assert_eq!(xml_text(&body, "ipAddress"), Some("127.0.0.5"));
            assert_eq!(
                xml_text(&body, "dateTime"),
                Some("2024-05-07T10:00:00+00:00")
            );
            let mut r = quick_xml::Reader::from_reader(p.body.as_slice());
            loop {
                match r.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(_) => {}
                    Err(e) => panic!("{k:?}: {e}\n{body}"),
                }
            }
        }
        let line = String::from_utf8(
            build_push(&d, &spec(EventKind::LineDetection, BodyFormat::Xml, 1), T).body,
        )
        .unwrap();
        assert_eq!(line.matches("<RegionCoordinates>").count(), 2);
        assert!(line.contains("<DetectionRegionList>"));
        let field = String::from_utf8(
            build_push(&d, &spec(EventKind::FieldDetection, BodyFormat::Xml, 1), T).body,
        )
        .unwrap();
        assert_eq!(field.matches("<RegionCoordinates>").count(), 4);
    }

    #[test]
    fn json_bodies_have_device_id_and_uuid() {
        let d = DeviceIdentity::new(1, ip(3));
        for k in [
            EventKind::Vmd,
            EventKind::PeopleCounting,
            EventKind::HeartBeat,
        ] {
            let p = build_push(&d, &spec(k, BodyFormat::Json, 2), T);
            assert_eq!(p.content_type, "application/json");
            let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
            assert_eq!(v["eventType"], k.event_type());
            assert_eq!(v["deviceID"], d.device_id.as_str());
            assert_eq!(v["macAddress"], d.mac.as_str());
            assert!(v["uuid"].as_str().is_some_and(|u| u.len() == 36));
        }
    }

    /// Split a multipart body by hand: (name, content type, data length).
    fn parts(p: &Push) -> Vec<(String, String, usize)> {
        let b = p.content_type.split("boundary=").nth(1).unwrap();
        let delim = format!("--{b}");
        let body = &p.body;
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(i) = body[pos..]
            .windows(delim.len())
            .position(|w| w == delim.as_bytes())
        {
            let start = pos + i + delim.len();
            if body[start..].starts_with(b"--") {
                break;
            }
            let hdr_end = body[start..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap()
                + start;
            let headers = String::from_utf8_lossy(&body[start..hdr_end]).to_string();
            let name = headers
                .split("name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string();
            let ctype = headers
                .split("Content-Type: ")
                .nth(1)
                .unwrap()
                .split("\r\n")
                .next()
                .unwrap()
                .to_string();
            let len: usize = headers
                .split("Content-Length: ")
                .nth(1)
                .unwrap()
                .split("\r\n")
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let data_start = hdr_end + 4;
            assert_eq!(&body[data_start + len..data_start + len + 2], b"\r\n");
            out.push((name, ctype, len));
            pos = data_start + len;
        }
        out
    }

    #[test]
    fn anpr_multipart_parts_in_order_with_sizes() {
        let d = DeviceIdentity::new(0, ip(2));
        let p = build_push(&d, &spec(EventKind::Anpr, BodyFormat::Xml, 4), T);
        let ps = parts(&p);
        let names: Vec<&str> = ps.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "anpr.xml",
                "licensePlatePicture.jpg",
                "detectionPicture.jpg"
            ]
        );
        assert_eq!(ps[0].1, "text/xml");
        assert!((3_000..=12_100).contains(&ps[1].2), "{}", ps[1].2);
        assert!((180_000..=450_100).contains(&ps[2].2), "{}", ps[2].2);
        assert_eq!(p.picture_bytes, ps[1].2 + ps[2].2);
        let body = String::from_utf8_lossy(&p.body);
        let plate = xml_text(&body, "licensePlate").unwrap();
        assert_eq!(plate.len(), 7);
        assert_eq!(xml_text(&body, "eventType"), Some("ANPR"));
        // Odd sequence numbers use the upper-case name seen on other models.
        let p = build_push(&d, &spec(EventKind::Anpr, BodyFormat::Xml, 5), T);
        assert_eq!(parts(&p)[0].0, "ANPR.xml");
    }

    #[test]
    fn access_multipart_face_and_card() {
        let d = DeviceIdentity::new(2, ip(4));
        let p = build_push(&d, &spec(EventKind::AccessFace, BodyFormat::Json, 0), T);
        assert_eq!(
            p.content_type,
            "multipart/form-data; boundary=MIME_boundary"
        );
        let ps = parts(&p);
        assert_eq!(
            ps.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["AccessControllerEvent", "Picture"]
        );
        assert_eq!(ps[0].1, "application/json");
        assert!((25_000..=90_100).contains(&ps[1].2));
        let json_start = p.body.windows(1).position(|w| w == b"{").unwrap();
        let de = serde_json::Deserializer::from_slice(&p.body[json_start..]);
        let v: serde_json::Value = de.into_iter().next().unwrap().unwrap();
        assert_eq!(v["AccessControllerEvent"]["subEventType"], 75);
        assert_eq!(v["AccessControllerEvent"]["majorEventType"], 5);
        let c = build_push(&d, &spec(EventKind::AccessCard, BodyFormat::Json, 1), T);
        let ps = parts(&c);
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].0, "event_log");
        assert_eq!(c.picture_bytes, 0);
    }

    #[test]
    fn face_snap_multipart() {
        let d = DeviceIdentity::new(5, ip(7));
        let p = build_push(&d, &spec(EventKind::FaceSnap, BodyFormat::Xml, 3), T);
        let ps = parts(&p);
        assert_eq!(
            ps.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["faceSnap.xml", "faceImage.jpg", "backgroundImage.jpg"]
        );
    }

    #[test]
    fn kinds_cycle() {
        let seq: Vec<EventKind> = (0..5).map(|n| KindArg::Xml.pick(n).0).collect();
        assert_eq!(
            seq,
            [
                EventKind::Vmd,
                EventKind::LineDetection,
                EventKind::FieldDetection,
                EventKind::PeopleCounting,
                EventKind::Vmd
            ]
        );
        let acc: Vec<EventKind> = (0..3).map(|n| KindArg::Access.pick(n).0).collect();
        assert_eq!(
            acc,
            [
                EventKind::AccessFace,
                EventKind::AccessFace,
                EventKind::AccessCard
            ]
        );
        let mixed: HashSet<&str> = (0..10)
            .map(|n| KindArg::Mixed.pick(n).0.event_type())
            .collect();
        assert_eq!(mixed.len(), 8);
    }

    #[test]
    fn quirks_change_bodies() {
        let d = DeviceIdentity::new(0, ip(2));
        let mk = |seq| {
            let s = EventSpec {
                kind: EventKind::Vmd,
                format: BodyFormat::Xml,
                seq,
                active_post_count: 2,
                quirks: true,
                channel: None,
            };
            String::from_utf8(build_push(&d, &s, T).body).unwrap()
        };
        assert!(!mk(0).starts_with("<?xml"));
        assert!(mk(1).contains("<activePostCount/>"));
        assert!(mk(2).contains("<protocolType>HTTP</protocolType>"));
        assert!(mk(3).contains(" & Gate</channelName>"));
        let plain = build_push(&d, &spec(EventKind::Vmd, BodyFormat::Xml, 3), T);
        assert!(!String::from_utf8(plain.body).unwrap().contains(" & "));
    }

    #[test]
    fn request_framing() {
        let p = Push {
            event_type: "VMD",
            content_type: "application/xml".into(),
            body: b"<a/>".to_vec(),
            parts: 0,
            picture_bytes: 0,
        };
        let r = request_bytes("127.0.0.1:8080", "/alarm", &p, T);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /alarm HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Language: en-US\r\nDate: Tue, 07 May 2024 10:00:00 GMT\r\n\
             Content-Type: application/xml\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\n<a/>"
        );
    }
}
