//! Follow-stream tests on bundled samples: the index against what samples/README.md and
//! expected.json say of each capture (worked out when they were recorded or crafted), and the
//! view drawn to a `TestBackend` at 80x24 and 200x60.

use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::super::app::{App, Cmd, Msg, Source};
use super::super::fixtures::draw;
use super::super::stream_load;
use super::super::theme::Theme;
use super::super::Feed;
use super::{StreamMsg, StreamState, StreamView, Unavailable};
use crate::stream_index::{Entry, MarkKind};
use crate::tcp::Side;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

/// An app that replayed the sample through the whole pipeline.
fn app_on(name: &str) -> App {
    app_with_keys(name, None)
}

/// As [`app_on`], replayed with a key log (`replay --keylog`), which the view is given too.
fn app_with_keys(name: &str, keys: Option<&[u8]>) -> App {
    let path = sample(name);
    let keys =
        keys.map(|k| crate::tls::SharedKeys(std::sync::Arc::new(crate::tls::KeyLog::parse(k))));
    let mut opts = crate::replay::ReplayOptions::default();
    opts.config.keys = keys.clone();
    let r = crate::replay::replay(&path, opts, &mut |_| {}, &mut |_| {}).expect("sample opens");
    let mut a = App::new(Source::Replay(path), Theme { color: true });
    a.stream_keys = keys;
    a.update(Msg::Feed(Feed::Final(r)));
    a
}

fn press(app: &mut App, c: KeyCode) -> Option<Cmd> {
    let m = app.key_to_msg(KeyEvent::new(c, KeyModifiers::NONE))?;
    app.update(m)
}

/// Press `f` and do what the shell does with the command (synchronously here).
fn follow(app: &mut App) {
    let cmd = press(app, KeyCode::Char('f'));
    let Some(Cmd::IndexStream { path, target }) = cmd else {
        panic!("f asks for an index, got {cmd:?}");
    };
    let result = stream_load::build(&path, &target);
    app.update(Msg::Stream(StreamMsg::Indexed(target.conn_id, result)));
}

fn view(app: &mut App) -> &mut StreamView {
    app.stream.as_mut().expect("the view is open")
}

/// Each side's bytes as the view shows them, read back from the file through the view's
/// source; gaps as `<gap N>`.
fn sides(app: &mut App) -> [Vec<u8>; 2] {
    let v = view(app);
    let StreamState::Ready { index, source } = &mut v.state else {
        panic!("index not ready");
    };
    let mut out = [Vec::new(), Vec::new()];
    for e in &index.entries {
        let d = usize::from(e.side() == Side::Server);
        match e {
            Entry::Data {
                frame, skip, len, ..
            } => {
                let p = match frame.inline {
                    Some(k) => index.inline[k as usize].clone(),
                    None => source.payload(frame).expect("frame reads back"),
                };
                out[d].extend_from_slice(&p[*skip as usize..(*skip + *len) as usize]);
            }
            Entry::Gap { bytes, .. } => out[d].extend(format!("<gap {bytes}>").bytes()),
            Entry::Plain {
                chunk, skip, len, ..
            } => {
                out[d].extend(format!("<plain {len}>").bytes());
                out[d].extend_from_slice(
                    &index.plain[*chunk as usize][*skip as usize..(*skip + *len) as usize],
                );
            }
            Entry::Mark { .. } => {}
        }
    }
    out
}

fn marks(app: &mut App) -> Vec<(Side, MarkKind)> {
    view(app)
        .index()
        .expect("ready")
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Mark { side, kind, .. } => Some((*side, kind.clone())),
            _ => None,
        })
        .collect()
}

/// Draw, let the view read the window the draw measured, draw again (as the shell's loop does).
fn draw_settled(app: &mut App, w: u16, h: u16) -> Vec<String> {
    draw(app, w, h);
    app.update(Msg::Tick(std::time::Instant::now()));
    draw(app, w, h)
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn out_of_order_body_is_shown_in_sequence_order() {
    let mut app = app_on("out-of-order.pcap");
    follow(&mut app);
    let [client, server] = sides(&mut app);
    let text = String::from_utf8_lossy(&client).to_string();
    assert!(text.starts_with("POST /alarm HTTP/1.1\r\n"), "{text}");
    // The body is exactly Content-Length long after the head: no segment missing, none twice.
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let cl: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("a Content-Length")
        .parse()
        .expect("a number");
    assert_eq!(body.len(), cl, "{body}");
    assert!(
        body.contains("<eventType>linedetection</eventType>"),
        "{body}"
    );
    assert!(
        body.trim_end().ends_with("</EventNotificationAlert>"),
        "{body}"
    );
    assert!(server.starts_with(b"HTTP/1.1 200"));
    assert_eq!(view(&mut app).index().unwrap().stats.gap_bytes, [0, 0]);
}

#[test]
fn capture_gap_is_shown_with_its_300_bytes_where_it_falls() {
    let mut app = app_on("capture-gap.pcap");
    follow(&mut app);
    let [client, _] = sides(&mut app);
    let text = String::from_utf8_lossy(&client).to_string();
    let ix = view(&mut app).index().unwrap().clone();
    assert_eq!(ix.stats.gap_bytes, [300, 0]);
    // Body bytes 600..900 are missing: the gap starts 600 bytes after the head.
    let head_len = text.find("\r\n\r\n").unwrap() + 4;
    let gap_at = text.find("<gap 300>").expect("the gap");
    assert_eq!(gap_at - head_len, 600, "{text}");
}

#[test]
fn retransmitted_overlap_keeps_the_first_arrival() {
    let mut app = app_on("retransmit-overlap.pcap");
    follow(&mut app);
    let [client, _] = sides(&mut app);
    assert!(contains(&client, b"<eventType>VMD</eventType>"));
    assert!(!contains(&client, b"BAD"));
    // The head appears once: repeats are not shown again.
    assert_eq!(client.windows(5).filter(|w| w == b"POST ").count(), 1);
    assert!(view(&mut app).index().unwrap().stats.retransmissions > 0);
}

#[test]
fn keepalive_marks_each_request_and_answer() {
    let mut app = app_on("keepalive.pcap");
    follow(&mut app);
    let m = marks(&mut app);
    let requests = m
        .iter()
        .filter(|(s, k)| {
            *s == Side::Client
                && matches!(k, MarkKind::Http { line } if line.starts_with("POST /alarm"))
        })
        .count();
    let answers = m
        .iter()
        .filter(|(s, k)| {
            *s == Side::Server
                && matches!(k, MarkKind::Http { line } if line.starts_with("HTTP/1.1 200"))
        })
        .count();
    assert_eq!((requests, answers), (4, 4), "{m:?}");
}

#[test]
fn tls_connection_shows_labelled_records_not_http() {
    let mut app = app_on("https-ok.pcap");
    follow(&mut app);
    let m = marks(&mut app);
    assert!(
        m.iter().all(|(_, k)| matches!(k, MarkKind::Tls { .. })),
        "{m:?}"
    );
    // The client speaks first with a handshake record (its ClientHello), and data follows.
    assert!(matches!(
        m.first(),
        Some((
            Side::Client,
            MarkKind::Tls {
                content_type: 22,
                ..
            }
        ))
    ));
    assert!(m.iter().any(|(_, k)| matches!(
        k,
        MarkKind::Tls {
            content_type: 23,
            ..
        }
    )));
    let l = draw_settled(&mut app, 120, 30);
    assert!(has(&l, "TLS record handshake (22)"), "{}", l.join("\n"));
    assert!(
        has(&l, "bytes of TLS records, x shows them)"),
        "{}",
        l.join("\n")
    );
    assert!(!has(&l, "\\x16\\x03"), "{}", l.join("\n"));
}

#[test]
fn picture_bodies_are_read_back_by_window_only() {
    let mut app = app_on("multipart-anpr.pcap");
    follow(&mut app);
    let ix = view(&mut app).index().unwrap().clone();
    // 1069 + 10240 + 81920 part bytes, plus the multipart framing and the head.
    assert!(ix.stats.data_bytes[0] > 1069 + 10240 + 81920);
    let l = draw_settled(&mut app, 100, 30);
    assert!(has(&l, "POST /alarm HTTP/1.1"), "{}", l.join("\n"));
    let v = view(&mut app);
    let cached: usize = v.cache.values().map(Vec::len).sum();
    assert!(cached < 70_000, "{cached} bytes read back for one screen");
    // The end of the stream is reachable and shows the answer.
    app.update(Msg::Stream(StreamMsg::End));
    let l = draw_settled(&mut app, 100, 30);
    assert!(has(&l, "HTTP/1.1 200"), "{}", l.join("\n"));
}

#[test]
fn at_80x24_text_mode_shows_the_request_line_marker_and_hex_mode_the_dump() {
    let mut app = app_on("capture-gap.pcap");
    follow(&mut app);
    let l = draw_settled(&mut app, 80, 24);
    let all = l.join("\n");
    assert!(has(&l, "Follow stream: "), "{all}");
    assert!(has(&l, "── client HTTP POST /alarm HTTP/1.1 ──"), "{all}");
    assert!(has(&l, "→ POST /alarm HTTP/1.1\\r\\n"), "{all}");
    assert!(has(&l, "gaps 300 / 0 bytes"), "{all}");
    assert!(has(&l, "x hex/text"), "{all}");
    press(&mut app, KeyCode::Char('x'));
    let l = draw_settled(&mut app, 80, 24);
    let all = l.join("\n");
    assert!(has(&l, "(hex)"), "{all}");
    // "POST /al" in hex, with the stream offset and the printable column.
    assert!(
        has(
            &l,
            "→ 00000000  50 4f 53 54 20 2f 61 6c  61 72 6d 20 48 54 54 50  POST /alarm HTTP"
        ),
        "{all}"
    );
}

#[test]
fn at_200x60_the_gap_marker_and_the_answer_are_on_screen() {
    let mut app = app_on("capture-gap.pcap");
    follow(&mut app);
    let l = draw_settled(&mut app, 200, 60);
    let all = l.join("\n");
    assert!(has(&l, "── client HTTP POST /alarm HTTP/1.1 ──"), "{all}");
    assert!(
        has(&l, "[gap: 300 bytes of client data not in the capture]"),
        "{all}"
    );
    assert!(has(&l, "── server HTTP HTTP/1.1 200 OK ──"), "{all}");
    // Where it falls: the server acknowledged the missing bytes before it answered.
    let at = |needle: &str| l.iter().position(|x| x.contains(needle)).unwrap();
    assert!(at("[gap: 300") < at("── server HTTP"), "{all}");
    assert!(
        at("</EventNotificationAlert>") < at("── server HTTP"),
        "{all}"
    );
    // In hex the request alone fills the screen; the last page shows the gap and the answer.
    press(&mut app, KeyCode::Char('x'));
    let l = draw_settled(&mut app, 200, 60);
    assert!(!has(&l, "[gap: 300"), "{}", l.join("\n"));
    press(&mut app, KeyCode::Char('G'));
    let l = draw_settled(&mut app, 200, 60);
    let all = l.join("\n");
    assert!(
        has(&l, "[gap: 300 bytes of client data not in the capture]"),
        "{all}"
    );
    assert!(
        has(
            &l,
            "← 00000000  48 54 54 50 2f 31 2e 31  20 32 30 30 20 4f 4b 0d  HTTP/1.1 200 OK."
        ),
        "{all}"
    );
}

#[test]
fn search_finds_forward_and_back_and_says_when_there_is_none() {
    let mut app = app_on("keepalive.pcap");
    follow(&mut app);
    draw_settled(&mut app, 100, 20);
    press(&mut app, KeyCode::Char('/'));
    for c in "http/1.1 200".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    let first = view(&mut app).hit.expect("a match");
    press(&mut app, KeyCode::Char('n'));
    let second = view(&mut app).hit.expect("a second match");
    assert!(second.0 > first.0, "{first:?} then {second:?}");
    press(&mut app, KeyCode::Char('N'));
    assert_eq!(view(&mut app).hit, Some(first));
    // The match is on the top line, highlighted.
    let l = draw_settled(&mut app, 100, 20);
    assert!(l[5].contains("HTTP/1.1 200"), "{}", l.join("\n"));
    press(&mut app, KeyCode::Char('/'));
    for c in "no such text".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    let l = draw(&app, 100, 20);
    assert!(
        has(&l, "\"no such text\" not found below"),
        "{}",
        l.join("\n")
    );
    // The mouse wheel scrolls the stream, not the list behind it.
    let top = view(&mut app).top;
    app.update(Msg::Scroll {
        column: 10,
        row: 10,
        delta: 3,
    });
    assert_ne!(view(&mut app).top, top);
    // Closing gives the list back.
    press(&mut app, KeyCode::Esc);
    assert!(app.stream.is_none());
    assert!(!app.quit);
}

#[test]
fn live_sources_say_a_capture_file_is_needed() {
    let mut app = app_on("keepalive.pcap");
    app.source = Source::Live("sniff eth0".into());
    assert_eq!(press(&mut app, KeyCode::Char('f')), None);
    assert!(matches!(
        view(&mut app).state,
        StreamState::Unavailable(Unavailable::NoCaptureFile)
    ));
    let l = draw(&app, 80, 24);
    assert!(
        has(&l, "follow stream needs a capture file (sniff --write)"),
        "{}",
        l.join("\n")
    );
}

#[test]
fn a_pcapng_capture_is_read_back_by_frame_number() {
    let mut app = app_on("two-interfaces.pcapng");
    follow(&mut app);
    let [client, _] = sides(&mut app);
    assert!(
        client.starts_with(b"POST ") || client.starts_with(b"GET "),
        "{:?}",
        String::from_utf8_lossy(&client)
    );
}

#[test]
fn segments_in_ip_fragments_are_shown_whole() {
    for name in [
        "ip-fragments.pcap",
        "ipv6-fragments.pcap",
        "erspan-fragmented.pcap",
    ] {
        let mut app = app_on(name);
        follow(&mut app);
        let [client, server] = sides(&mut app);
        let text = String::from_utf8_lossy(&client).to_string();
        assert!(!text.contains("<gap"), "{name}: {text}");
        assert!(
            text.contains("<eventType>linedetection</eventType>"),
            "{name}: {text}"
        );
        assert!(
            text.trim_end().ends_with("</EventNotificationAlert>"),
            "{name}: {text}"
        );
        assert!(server.starts_with(b"HTTP/1.1 200"), "{name}");
        let ix = view(&mut app).index().unwrap().clone();
        assert!(!ix.inline.is_empty(), "{name}: no reassembled segment");
    }
}

/// The key log as recorded beside a sample.
fn keys_of(name: &str) -> Vec<u8> {
    std::fs::read(sample(name)).expect("key log")
}

/// With the key log, a TLS 1.2 push (samples/https-tls12.pcap: tshark with the same log reads
/// `POST /alarm` and `HTTP/1.1 200`) is followed as plaintext: record marks kept, the HTTP
/// start marked, the request line on an 80x24 screen after a search, the answer decrypted too;
/// the handshake stays shown as records.
#[test]
fn with_the_key_log_a_tls_connection_is_followed_as_plaintext_at_80x24() {
    let mut app = app_with_keys("https-tls12.pcap", Some(&keys_of("https-tls12.keys")));
    follow(&mut app);
    let [client, server] = sides(&mut app);
    let (client, server) = (
        String::from_utf8_lossy(&client).to_string(),
        String::from_utf8_lossy(&server).to_string(),
    );
    assert!(client.contains("POST /alarm HTTP/1.1\r\n"), "{client}");
    assert!(server.contains("HTTP/1.1 200"), "{server}");
    // The ClientHello is shown as it was sent: a record, not plaintext.
    assert!(client.starts_with("\x16\x03"), "{client}");
    let m = marks(&mut app);
    let request = m
        .iter()
        .position(|(s, k)| {
            *s == Side::Client
                && matches!(k, MarkKind::Http { line } if line == "POST /alarm HTTP/1.1")
        })
        .unwrap_or_else(|| panic!("{m:?}"));
    // The HTTP start comes right after its record's mark (application data).
    assert!(
        matches!(
            m[..request].iter().rev().find(|(s, _)| *s == Side::Client),
            Some((
                _,
                MarkKind::Tls {
                    content_type: 23,
                    ..
                }
            ))
        ),
        "{m:?}"
    );
    // The decrypted record's encrypted bytes are not shown besides its plaintext.
    let entries = &view(&mut app).index().unwrap().entries;
    let after: Vec<_> = entries
        .iter()
        .skip_while(|e| {
            !matches!(
                e,
                Entry::Mark {
                    kind: MarkKind::Http { .. },
                    side: Side::Client,
                    ..
                }
            )
        })
        .take_while(|e| e.side() == Side::Client)
        .collect();
    assert!(
        after.iter().all(|e| !matches!(e, Entry::Data { .. })),
        "{after:?}"
    );

    app.update(Msg::Stream(StreamMsg::StartSearch));
    for c in "POST /alarm".chars() {
        app.update(Msg::Stream(StreamMsg::SearchChar(c)));
    }
    app.update(Msg::Stream(StreamMsg::SearchNext));
    let l = draw_settled(&mut app, 80, 24);
    let all = l.join("\n");
    assert!(has(&l, "→ POST /alarm HTTP/1.1\\r\\n"), "{all}");
    // tshark: application-data records in frames 10 and 11 (client) and 13 (server).
    assert!(has(&l, "decrypted 3 records"), "{all}");
}

/// A key log whose secret does not match (the recorded one with its last digit changed): the
/// header says why nothing is decrypted and the records stay labelled, as without keys.
#[test]
fn with_a_wrong_key_the_records_stay_labelled_and_the_header_says_why() {
    let text = String::from_utf8(keys_of("https-tls12.keys")).unwrap();
    let wrong: String = text
        .lines()
        .map(|l| match l.strip_suffix('0') {
            Some(rest) if !l.starts_with('#') => format!("{rest}1\n"),
            _ if !l.starts_with('#') => format!("{}0\n", &l[..l.len() - 1]),
            _ => format!("{l}\n"),
        })
        .collect();
    let mut app = app_with_keys("https-tls12.pcap", Some(wrong.as_bytes()));
    follow(&mut app);
    let ix = view(&mut app).index().unwrap().clone();
    assert!(ix.plain.is_empty());
    assert!(!ix.entries.iter().any(|e| matches!(e, Entry::Plain { .. })));
    let l = draw_settled(&mut app, 120, 30);
    assert!(
        has(&l, "not decrypted: key log does not match"),
        "{}",
        l.join("\n")
    );
    assert!(
        has(&l, "bytes of TLS records, x shows them)"),
        "{}",
        l.join("\n")
    );
}

/// `sample` without the frames numbered (from 1) in `drop`, written to a temporary file (a
/// classic little-endian pcap, as the samples are).
fn without_frames(sample_name: &str, drop: &[usize]) -> PathBuf {
    let b = std::fs::read(sample(sample_name)).expect("sample");
    let mut out = b[..24].to_vec();
    let (mut o, mut n) = (24usize, 0usize);
    while o + 16 <= b.len() {
        let incl = u32::from_le_bytes([b[o + 8], b[o + 9], b[o + 10], b[o + 11]]) as usize;
        n += 1;
        if !drop.contains(&n) {
            out.extend_from_slice(&b[o..o + 16 + incl]);
        }
        o += 16 + incl;
    }
    let path = std::env::temp_dir().join(format!(
        "alarmscope-stream-{}-{sample_name}",
        std::process::id()
    ));
    std::fs::write(&path, out).expect("temp file");
    path
}

/// A capture gap inside the encrypted stream: `https-keepalive.pcap` (three pushes, TLS 1.3)
/// without frame 17 (the client's 207-byte record holding the second request's head; tshark:
/// `tcp.seq` 1388, `tcp.len` 207). The view shows the gap, decrypts on after it (the decryptor
/// resynchronises on the next record) and marks the first and third requests and all three
/// answers, and each decrypted record after the gap; the second request's body, whose head is
/// lost, is plaintext without an HTTP mark.
#[test]
fn after_a_gap_in_the_encrypted_stream_the_view_decrypts_on() {
    let path = without_frames("https-keepalive.pcap", &[17]);
    let keys = crate::tls::SharedKeys(std::sync::Arc::new(crate::tls::KeyLog::parse(&keys_of(
        "https-keepalive.keys",
    ))));
    let mut opts = crate::replay::ReplayOptions::default();
    opts.config.keys = Some(keys.clone());
    let r = crate::replay::replay(&path, opts, &mut |_| {}, &mut |_| {}).expect("opens");
    let mut app = App::new(Source::Replay(path.clone()), Theme { color: true });
    app.stream_keys = Some(keys);
    app.update(Msg::Feed(Feed::Final(r)));
    follow(&mut app);
    let _ = std::fs::remove_file(&path);
    let ix = view(&mut app).index().unwrap().clone();
    assert_eq!(ix.stats.gap_bytes, [207, 0]);
    let http: Vec<(Side, String)> = marks(&mut app)
        .into_iter()
        .filter_map(|(s, k)| match k {
            MarkKind::Http { line } => Some((s, line)),
            _ => None,
        })
        .collect();
    let requests = http.iter().filter(|(s, _)| *s == Side::Client).count();
    let answers = http
        .iter()
        .filter(|(s, l)| *s == Side::Server && l.starts_with("HTTP/1.1 200"))
        .count();
    assert_eq!((requests, answers), (2, 3), "{http:?}");
    // The records after the gap are marked too (tshark: frames 18, 22 and 23 hold records of
    // 1070, 218 and 562 bytes), though the keyless labelling stopped at the gap.
    let entries = &view(&mut app).index().unwrap().entries;
    let after_gap: Vec<u16> = entries
        .iter()
        .skip_while(|e| !matches!(e, Entry::Gap { .. }))
        .filter_map(|e| match e {
            Entry::Mark {
                side: Side::Client,
                kind: MarkKind::Tls { length, .. },
                ..
            } => Some(*length),
            _ => None,
        })
        .collect();
    assert_eq!(after_gap, [1070, 218, 562]);
    let [client, _] = sides(&mut app);
    let client = String::from_utf8_lossy(&client).to_string();
    let gap = client.find("<gap 207>").expect("the gap is shown");
    assert!(
        client[gap..].contains("POST /alarm HTTP/1.1\r\n"),
        "decrypted after the gap: {client}"
    );
}
