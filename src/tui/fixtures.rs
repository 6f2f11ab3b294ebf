//! Hand-made connections for the TUI tests (the pipeline stages are built in parallel).
//!
//! The capture `capture()` describes, relative to T0 = 2024-03-05 10:00:00 UTC, ends at T0+60 s:
//!
//! | conn | device    | at   | what                                            | verdict      |
//! |------|-----------|------|-------------------------------------------------|--------------|
//! | 1    | 10.0.0.5  | +1   | POST /alarm VMD active, 200 after 12.5 ms        | ok           |
//! | 2    | 10.0.0.5  | +5   | POST /alarm linedetection, no answer (body B)   | no_response  |
//! | 4    | 10.0.0.7  | +10  | ANPR multipart AB123CD, 503                      | error_status |
//! | 5    | 10.0.0.9  | +12  | 3 SYNs, nothing answered                        | (unanswered) |
//! | 7    | 10.0.0.8  | +15  | JSON access event, reset mid-body               | incomplete   |
//! | 6    | 10.0.0.9  | +20  | SYN answered by RST                             | (refused)    |
//! | 3    | 10.0.0.5  | +35  | POST /alarm linedetection again (body B), 200   | ok (retry)   |
//!
//! So, by hand: stalls 10.0.0.5 30.0 s (+5..+35), 10.0.0.7 50.0 s and 10.0.0.8 45.0 s (open to
//! the end); one retry (conn 3 of conn 2); 5 requests: 2 ok, 1 error_status, 1 no_response,
//! 1 incomplete; 2 handshake failures.

use crate::isapi::{EventInfo, Node, PartInfo};
use crate::model::{
    Connection, EventSummary, Exchange, Report, Request, Response, Summary, Verdict,
};
use crate::tcp::{CloseKind, Direction, Handshake, PacketNote, Side};
use crate::time::Timestamp;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

use super::app::{App, Msg, Source};
use super::theme::Theme;
use super::{render, Feed};

/// 2024-03-05 10:00:00 UTC.
pub const T0: i64 = 1_709_632_800;

pub fn ts(secs: f64) -> Timestamp {
    Timestamp(T0 * 1_000_000_000 + (secs * 1e9).round() as i64)
}

/// Builder for one connection.
pub struct ConnB {
    c: Connection,
}

pub fn conn(id: u64, client: &str, at: f64) -> ConnB {
    ConnB {
        c: Connection {
            id,
            client: client.into(),
            server: "10.0.0.1:8080".into(),
            handshake: Handshake::Complete,
            one_sided: None,
            syn_attempts: 1,
            closed: CloseKind::Fin(Side::Client),
            first_seen: ts(at),
            last_seen: ts(at + 0.1),
            packets: 8,
            gap_bytes: [0, 0],
            retransmissions: 0,
            truncated_frames: 0,
            errors: vec![],
            upgrade: None,
            upgraded_bytes: [0, 0],
            tls: None,
            tls_findings: Vec::new(),
            decryption: None,
            handshake_uncertain: None,
            exchanges: vec![],
            timeline: vec![],
        },
    }
}

fn note(at: f64, dir: Direction, flags: &str, seq: u32, ack: u32, len: u32) -> PacketNote {
    PacketNote {
        ts: ts(at),
        dir,
        flags: flags.into(),
        seq,
        ack,
        len,
    }
}

impl ConnB {
    pub fn closed(mut self, k: CloseKind) -> Self {
        self.c.closed = k;
        self
    }

    /// SYN, SYN-ACK, ACK then the request's first segment.
    pub fn complete_handshake(mut self) -> Self {
        let t = self.c.first_seen.as_secs_f64() - T0 as f64;
        use Direction::*;
        self.c.timeline = vec![
            note(t, ClientToServer, "SYN", 0, 0, 0),
            note(t + 0.0004, ServerToClient, "SYN,ACK", 0, 1, 0),
            note(t + 0.0009, ClientToServer, "ACK", 1, 1, 0),
            note(t + 0.0010, ClientToServer, "PSH,ACK", 1, 1, 512),
        ];
        self
    }

    pub fn unanswered(mut self, syns: u32) -> Self {
        let t = self.c.first_seen.as_secs_f64() - T0 as f64;
        self.c.handshake = Handshake::Unanswered;
        self.c.syn_attempts = syns;
        self.c.closed = CloseKind::Open;
        self.c.packets = u64::from(syns);
        self.c.timeline = (0..syns)
            .map(|i| {
                note(
                    t + f64::from(1u32 << i) - 1.0,
                    Direction::ClientToServer,
                    "SYN",
                    0,
                    0,
                    0,
                )
            })
            .collect();
        self
    }

    pub fn refused(mut self) -> Self {
        let t = self.c.first_seen.as_secs_f64() - T0 as f64;
        self.c.handshake = Handshake::Refused;
        self.c.closed = CloseKind::Rst(Side::Server);
        self.c.packets = 2;
        self.c.timeline = vec![
            note(t, Direction::ClientToServer, "SYN", 0, 0, 0),
            note(t + 0.0003, Direction::ServerToClient, "RST,ACK", 0, 1, 0),
        ];
        self
    }

    pub fn exchange(mut self, mut ex: Exchange) -> Self {
        ex.index = self.c.exchanges.len();
        self.c.last_seen = self.c.last_seen.max(ex.request.end_time);
        if let Some(r) = &ex.response {
            self.c.last_seen = self.c.last_seen.max(r.time);
        }
        self.c.exchanges.push(ex);
        self
    }

    pub fn build(self) -> Connection {
        self.c
    }
}

/// An exchange at `at` seconds after T0; `status` None means no response.
pub fn exchange(at: f64, path: &str, status: Option<u16>, hash: u64) -> Exchange {
    let time = ts(at);
    let end = ts(at + 0.002);
    let mut e = Exchange {
        index: 0,
        request: Request {
            time,
            end_time: end,
            method: "POST".into(),
            path: path.into(),
            content_type: Some("application/xml".into()),
            body_bytes: 640,
            content_length: Some(640),
            complete: true,
            missing_bytes: 0,
            error: None,
            headers: vec![
                ("Host".into(), "10.0.0.1:8080".into()),
                ("Content-Type".into(), "application/xml".into()),
                ("Content-Length".into(), "640".into()),
            ],
        },
        response: status.map(|s| Response {
            time: ts(at + 0.0145),
            status: s,
            reason: match s {
                200 => "OK".into(),
                503 => "Service Unavailable".into(),
                _ => "Error".into(),
            },
            latency_ms: 12.5,
            headers: vec![("Connection".into(), "close".into())],
            interim: vec![],
            body_bytes: 0,
        }),
        verdict: crate::model::Verdict::Ok,
        event: None,
        parts: vec![],
        retry_of: None,
        injected_fault: None,
        auth: None,
        body_kind: "xml",
        body_error: None,
        notes: Vec::new(),
        encrypted: None,
        decrypted: false,
        body_hash: hash,
        metadata: None,
        event_detail: None,
        pending_event: None,
    };
    e.verdict = Verdict::of(&e);
    e
}

fn leaf(name: &str, text: &str) -> Node {
    Node {
        name: name.into(),
        text: Some(text.into()),
        children: vec![],
    }
}

/// Attach an XML event of this type (and plate) with its metadata and tree.
pub fn with_xml_event(
    mut e: Exchange,
    ip: &str,
    event_type: &str,
    state: &str,
    plate: Option<&str>,
) -> Exchange {
    let anpr = plate.map(|p| {
        format!("<ANPR><licensePlate>{p}</licensePlate><confidence>92</confidence></ANPR>")
    });
    e.metadata = Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\"><ipAddress>{ip}</ipAddress><macAddress>44:19:b6:00:00:01</macAddress><channelID>1</channelID><dateTime>2024-03-05T10:00:00+00:00</dateTime><eventType>{event_type}</eventType><eventState>{state}</eventState>{}</EventNotificationAlert>",
        anpr.unwrap_or_default()
    ));
    let mut children = vec![
        leaf("ipAddress", ip),
        leaf("macAddress", "44:19:b6:00:00:01"),
        leaf("channelID", "1"),
        leaf("eventType", event_type),
        leaf("eventState", state),
    ];
    if let Some(p) = plate {
        children.push(Node {
            name: "ANPR".into(),
            text: None,
            children: vec![leaf("licensePlate", p), leaf("confidence", "92")],
        });
    }
    let info = EventInfo {
        format: "xml",
        event_type: Some(event_type.into()),
        event_state: Some(state.into()),
        device_ip: Some(ip.into()),
        mac: Some("44:19:b6:00:00:01".into()),
        channel: Some("1".into()),
        date_time: Some("2024-03-05T10:00:00+00:00".into()),
        plate: plate.map(str::to_string),
        tree: Node {
            name: "EventNotificationAlert".into(),
            text: None,
            children,
        },
        ..EventInfo::default()
    };
    e.event = Some(EventSummary::from(&info));
    e.event_detail = Some(Box::new(info));
    e
}

/// The connections of the table above.
pub fn capture() -> Vec<Connection> {
    let c1 = conn(1, "10.0.0.5:50001", 1.0)
        .complete_handshake()
        .exchange(with_xml_event(
            exchange(1.0, "/alarm", Some(200), 0xA1),
            "10.0.0.5",
            "VMD",
            "active",
            None,
        ))
        .build();
    let c2 = conn(2, "10.0.0.5:50002", 5.0)
        .complete_handshake()
        .closed(CloseKind::Rst(Side::Client))
        .exchange(with_xml_event(
            exchange(5.0, "/alarm", None, 0xB2),
            "10.0.0.5",
            "linedetection",
            "active",
            None,
        ))
        .build();
    let c3 = conn(3, "10.0.0.5:50003", 35.0)
        .complete_handshake()
        .exchange(with_xml_event(
            exchange(35.0, "/alarm", Some(200), 0xB2),
            "10.0.0.5",
            "linedetection",
            "active",
            None,
        ))
        .build();
    let mut anpr = with_xml_event(
        exchange(10.0, "/anpr/upload", Some(503), 0xC3),
        "10.0.0.7",
        "ANPR",
        "active",
        Some("AB123CD"),
    );
    anpr.body_kind = "multipart";
    anpr.request.content_type = Some("multipart/form-data; boundary=MIME_boundary".into());
    anpr.parts = vec![
        PartInfo {
            name: Some("anpr.xml".into()),
            filename: Some("anpr.xml".into()),
            content_type: Some("text/xml".into()),
            bytes: 1024,
            picture: None,
        },
        PartInfo {
            name: Some("licensePlatePicture.jpg".into()),
            filename: Some("licensePlatePicture.jpg".into()),
            content_type: Some("image/jpeg".into()),
            bytes: 48_213,
            picture: None,
        },
        PartInfo {
            name: Some("detectionPicture.jpg".into()),
            filename: Some("detectionPicture.jpg".into()),
            content_type: Some("image/jpeg".into()),
            bytes: 312_555,
            picture: None,
        },
    ];
    let c4 = conn(4, "10.0.0.7:40000", 10.0)
        .complete_handshake()
        .exchange(anpr)
        .build();
    let c5 = conn(5, "10.0.0.9:41000", 12.0).unanswered(3).build();
    let c6 = conn(6, "10.0.0.9:41001", 20.0).refused().build();
    let mut acs = exchange(15.0, "/event", None, 0xD4);
    acs.request.complete = false;
    acs.request.content_type = Some("application/json".into());
    acs.body_kind = "json";
    acs.metadata = Some("{\"ipAddress\":\"10.0.0.8\",\"eventType\":\"AccessControllerEvent\",\"AccessControllerEvent\":{\"majorEventType\":5,\"subEventType\":75}}".into());
    acs.verdict = Verdict::of(&acs);
    let c7 = conn(7, "10.0.0.8:42000", 15.0)
        .complete_handshake()
        .closed(CloseKind::Rst(Side::Server))
        .exchange(acs)
        .build();
    vec![c1, c2, c4, c5, c7, c6, c3]
}

/// The final report for [`capture`], as a replay would send it (diagnosis left to the app).
pub fn report() -> Report {
    Report {
        source: "fixture.pcap".into(),
        connections: capture(),
        summary: Summary {
            packets: 123,
            last_packet: Some(ts(60.0)),
            first_packet: Some(ts(1.0)),
            ..Summary::default()
        },
        ..Report::default()
    }
}

/// An app that received the whole fixture capture.
pub fn app() -> App {
    let mut a = App::new(Source::Replay("fixture.pcap".into()), Theme { color: true });
    a.update(Msg::Feed(Feed::Final(report())));
    a
}

/// `n` exchanges: 10 per connection over 1,000 devices, every 50th unanswered.
pub fn many(n: usize) -> Vec<Connection> {
    let per = 10;
    let mut out = Vec::with_capacity(n / per + 1);
    let mut made = 0;
    let mut id = 0u64;
    while made < n {
        id += 1;
        let dev = id % 1000;
        let client = format!(
            "10.{}.{}.{}:{}",
            dev / 250,
            dev % 250,
            1 + id % 200,
            40000 + id % 20000
        );
        let at = id as f64 * 0.01;
        let mut b = conn(id, &client, at).complete_handshake();
        for k in 0..per.min(n - made) {
            let status = if (made + k) % 50 == 0 {
                None
            } else {
                Some(200)
            };
            let e = exchange(
                at + k as f64 * 0.001,
                "/ISAPI/Event/notification/alertStream",
                status,
                (made + k) as u64,
            );
            let mut e = e;
            e.event = Some(EventSummary {
                format: "xml",
                event_type: Some("VMD".into()),
                event_state: Some("active".into()),
                ..EventSummary::default()
            });
            e.request.headers.clear();
            b = b.exchange(e);
        }
        made += per.min(n - made);
        out.push(b.build());
    }
    out
}

/// Draw `app` at `w` x `h` on a test backend, as the terminal would show it.
pub fn draw_buffer(app: &App, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    term.draw(|f| render(f, app)).expect("draw");
    term.backend().buffer().clone()
}

/// A drawn screen's text, one string per row.
pub fn rows(buf: &Buffer) -> Vec<String> {
    let area = buf.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .filter_map(|x| buf.cell((x, y)).map(|c| c.symbol().to_string()))
                .collect::<String>()
        })
        .collect()
}

/// Draw `app` at `w` x `h`; the screen's text, one string per row.
pub fn draw(app: &App, w: u16, h: u16) -> Vec<String> {
    rows(&draw_buffer(app, w, h))
}

/// The first screen row holding `needle`; the test fails with the whole screen when none does.
pub fn find<'a>(lines: &'a [String], needle: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", lines.join("\n")))
}
