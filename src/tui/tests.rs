//! Screen tests: render to a `TestBackend` and read the buffer text; and `update()` directly.
//! Expected values come from the fixture table in `fixtures.rs`, worked out by hand.

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::style::Color;
use ratatui::Terminal;

use super::app::{App, Cmd, Focus, Msg, Source, Tab};
use super::fixtures::{self, draw, find, ts};
use super::save::{save_message, SaveOutcome};
use super::theme::Theme;
use super::{render, Feed};
use crate::model::Verdict;
use crate::replay::Progress;

/// The text inside the panes, rows joined by spaces (undoes word wrapping).
fn pane_text(lines: &[String]) -> String {
    let rows: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with('│'))
        .map(|l| l.trim_matches('│').trim())
        .collect();
    rows.join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn press(app: &mut App, c: KeyCode) -> Option<Cmd> {
    let m = app.key_to_msg(key(c))?;
    app.update(m)
}

fn type_text(app: &mut App, s: &str) {
    for ch in s.chars() {
        press(app, KeyCode::Char(ch));
    }
}

/// The connection id of each shown row.
fn row_conns(app: &App) -> Vec<u64> {
    app.rows
        .iter()
        .map(|r| app.row(*r).expect("row").conn_id)
        .collect()
}

fn selected_conn(app: &App) -> u64 {
    let r = app.selected_row().expect("a selected row");
    app.row(r).expect("row").conn_id
}

#[test]
fn rows_are_in_time_order_including_connections_without_requests() {
    let app = fixtures::app();
    // +1 c1, +5 c2, +10 c4, +12 c5, +15 c7, +20 c6, +35 c3
    assert_eq!(row_conns(&app), vec![1, 2, 4, 5, 7, 6, 3]);
    assert_eq!(app.row(app.rows[3]).and_then(|r| r.exchange()), None);
    assert_eq!(app.row(app.rows[5]).and_then(|r| r.exchange()), None);
}

#[test]
fn diagnosis_runs_on_final_report() {
    let app = fixtures::app();
    let s = &app.summary;
    assert_eq!(
        (
            s.requests,
            s.ok,
            s.error_status,
            s.no_response,
            s.incomplete
        ),
        (5, 2, 1, 1, 1)
    );
    assert_eq!((s.handshake_failures, s.stalls, s.retries), (2, 3, 1));
    assert!(app.finished);
}

#[test]
fn list_shows_verdicts_and_markers() {
    let app = fixtures::app();
    let l = draw(&app, 140, 40);
    let vmd = find(&l, "VMD active");
    assert!(
        vmd.contains("10:00:01.000") && vmd.contains("10.0.0.5") && vmd.contains("POST /alarm"),
        "{vmd}"
    );
    assert!(
        vmd.contains(" 200 ") && vmd.contains("12.5 ms") && vmd.contains(" ok "),
        "{vmd}"
    );
    let line = find(&l, "10:00:05.000");
    assert!(
        line.contains("linedetection active")
            && line.contains("no_response")
            && line.contains("S30.0s"),
        "{line}"
    );
    let anpr = find(&l, "ANPR AB123CD");
    assert!(
        anpr.contains("503") && anpr.contains("error_status") && anpr.contains("S50.0s"),
        "{anpr}"
    );
    let acs = find(&l, "10:00:15.000");
    assert!(
        acs.contains("incomplete") && acs.contains("S45.0s"),
        "{acs}"
    );
    let unans = find(&l, "10:00:12.000");
    assert!(
        unans.contains("(3 SYN, no answer)") && unans.contains("unanswered"),
        "{unans}"
    );
    let refused = find(&l, "10:00:20.000");
    assert!(refused.contains("refused"), "{refused}");
    // The retry: ok, marked R, no stall.
    let retry = find(&l, "10:00:35.000");
    assert!(retry.contains(" ok "), "{retry}");
    assert!(retry.trim_end_matches(['│', ' ']).ends_with('R'), "{retry}");
    assert!(!vmd.trim_end_matches(['│', ' ']).ends_with('R'), "{vmd}");
    // Header counts.
    let counts = find(&l, "requests 5");
    for want in [
        "ok 2",
        "error_status 1",
        "no_response 1",
        "incomplete 1",
        "handshake_fail 2",
        "stalls 3",
        "retries 1",
    ] {
        assert!(counts.contains(want), "{want} in {counts}");
    }
}

#[test]
fn verdict_colours_follow_the_scheme() {
    let app = fixtures::app();
    let mut term = Terminal::new(TestBackend::new(140, 40)).unwrap();
    term.draw(|f| render(f, &app)).unwrap();
    let buf = term.backend().buffer().clone();
    let colour_of = |needle: &str| -> Color {
        for y in 0..40u16 {
            let line: String = (0..140u16)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            // Skip the header's count line: look in the list rows only.
            if y < 5 {
                continue;
            }
            if let Some(pos) = line.find(needle) {
                let x = line[..pos].chars().count() as u16;
                return buf[(x, y)].fg;
            }
        }
        panic!("{needle} not found");
    };
    assert_eq!(colour_of("error_status"), Color::Yellow);
    assert_eq!(colour_of("no_response"), Color::Red);
    assert_eq!(colour_of("incomplete"), Color::Red);
    assert_eq!(colour_of("unanswered"), Color::Magenta);
    assert_eq!(colour_of("refused"), Color::Magenta);
}

#[test]
fn no_color_draws_without_colours() {
    let mut app = fixtures::app();
    app.theme = Theme { color: false };
    app.update(Msg::ToggleHelp);
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    term.draw(|f| render(f, &app)).unwrap();
    for c in term.backend().buffer().content() {
        assert_eq!(
            (c.fg, c.bg),
            (Color::Reset, Color::Reset),
            "{:?}",
            c.symbol()
        );
    }
}

#[test]
fn handshake_tab_shows_syn_synack_ack_steps() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('1'));
    assert_eq!(app.tab, Tab::Handshake);
    press(&mut app, KeyCode::Enter); // detail focus: the detail pane gets the larger share
    let l = draw(&app, 120, 40);
    let syn = find(&l, "+0.000 ms");
    assert!(
        syn.contains("device->server")
            && syn.contains("SYN ")
            && syn.contains("0          0      0"),
        "{syn}"
    );
    let synack = find(&l, "+0.400 ms");
    assert!(
        synack.contains("server->device") && synack.contains("SYN,ACK"),
        "{synack}"
    );
    let ack = find(&l, "+0.900 ms");
    assert!(
        ack.contains("device->server") && ack.contains("ACK ") && !ack.contains("SYN"),
        "{ack}"
    );
    let data = find(&l, "+1.000 ms");
    assert!(
        data.contains("PSH,ACK") && data.trim_end_matches(['│', ' ']).ends_with("512"),
        "{data}"
    );
    find(
        &l,
        "Three-way handshake completed between 10.0.0.5:50001 and 10.0.0.1:8080.",
    );

    // The unanswered connection: three SYNs at +0, +1 s, +3 s and nothing back.
    press(&mut app, KeyCode::Enter);
    for _ in 0..3 {
        press(&mut app, KeyCode::Down);
    }
    let l = draw(&app, 120, 50);
    let syns: Vec<&String> = l
        .iter()
        .filter(|x| x.contains("device->server") && x.contains("SYN"))
        .collect();
    assert_eq!(syns.len(), 3, "{}", l.join("\n"));
    assert!(syns[2].contains("+3000.000 ms"), "{}", syns[2]);
    assert!(!l.iter().any(|x| x.contains("server->device")));
    find(&l, "sent 3 SYN(s) to 10.0.0.1:8080 and nothing answered");
}

#[test]
fn request_tab_shows_indented_xml_and_parts_with_sizes() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('n'));
    press(&mut app, KeyCode::Char('n')); // rows 1 then 2: the ANPR exchange
    assert_eq!(selected_conn(&app), 4);
    press(&mut app, KeyCode::Char('2'));
    let l = draw(&app, 120, 100);
    find(&l, "POST /anpr/upload");
    find(&l, "Body: multipart");
    let p1 = find(&l, "licensePlatePicture.jpg");
    assert!(
        p1.contains("image/jpeg") && p1.contains("48,213 bytes"),
        "{p1}"
    );
    let p2 = find(&l, "detectionPicture.jpg");
    assert!(p2.contains("312,555 bytes"), "{p2}");
    assert!(find(&l, "anpr.xml").contains("1,024 bytes"));
    find(&l, "Event: type ANPR  state active  plate AB123CD");
    // Event tree, indented by depth under a two-space margin.
    find(&l, "│      licensePlate: AB123CD");
    // Metadata XML: two spaces per level under the margin.
    find(&l, "│  <EventNotificationAlert version=\"2.0\"");
    find(&l, "│    <ipAddress>10.0.0.7</ipAddress>");
    find(&l, "│    <ANPR>");
    find(&l, "│      <licensePlate>AB123CD</licensePlate>");
    find(&l, "│    </ANPR>");
    find(&l, "│  </EventNotificationAlert>");
}

#[test]
fn request_tab_json_pretty_and_response_tab() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::End);
    for _ in 0..2 {
        press(&mut app, KeyCode::Up);
    }
    assert_eq!(selected_conn(&app), 7);
    press(&mut app, KeyCode::Char('2'));
    let l = draw(&app, 120, 60);
    find(&l, "Metadata (JSON)");
    find(&l, "│      \"majorEventType\": 5,");
    find(&l, "body: 640 bytes (Content-Length 640), NOT complete");
    press(&mut app, KeyCode::Right);
    assert_eq!(app.tab, Tab::Response);
    let l = draw(&app, 120, 40);
    find(&l, "No final response.");
    // The ANPR exchange's response.
    press(&mut app, KeyCode::Home);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    let l = draw(&app, 120, 40);
    let st = find(&l, "HTTP 503 Service Unavailable");
    assert!(st.contains("latency: 12.5 ms"), "{st}");
    find(&l, "Connection: close");
}

#[test]
fn diagnosis_tab_uses_the_explanations_and_stall_length() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Down); // c2: no response
    press(&mut app, KeyCode::Char('4'));
    press(&mut app, KeyCode::Enter);
    let l = draw(&app, 140, 50);
    let v = find(&l, "Verdict:");
    assert!(v.contains("no_response"), "{v}");
    let text = pane_text(&l);
    assert!(
        text.contains("In this capture the device's next request came 30.0 s later."),
        "{text}"
    );
    let s = find(&l, "Stall:");
    assert!(
        s.contains("30.0 s from 10:00:05.000 to 10:00:35.000 UTC (no_response)"),
        "{s}"
    );
    find(&l, "Three-way handshake completed");
}

#[test]
fn filter_matches_device_path_event_plate_status_and_verdict() {
    let cases: &[(&str, &[u64])] = &[
        ("10.0.0.9", &[5, 6]),
        ("LINEDET", &[2, 3]),
        ("ab123", &[4]),
        ("503", &[4]),
        ("no_resp", &[2]),
        ("refused", &[6]),
        ("/event", &[7]),
        ("zzz", &[]),
    ];
    for (text, want) in cases {
        let mut app = fixtures::app();
        press(&mut app, KeyCode::Char('/'));
        assert!(app.filter_editing);
        type_text(&mut app, text);
        assert_eq!(row_conns(&app), *want, "filter {text:?}");
        press(&mut app, KeyCode::Enter);
        assert!(!app.filter_editing);
        assert_eq!(app.filter, *text);
        // Rendering a filtered (possibly empty) list works.
        let l = draw(&app, 100, 30);
        find(&l, &format!("Exchanges {} of 7", want.len()));
    }
    // Esc while typing clears the filter; 'q' typed in the filter is text, not quit.
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "q");
    assert!(!app.quit);
    assert_eq!(app.rows.len(), 0);
    press(&mut app, KeyCode::Esc);
    assert_eq!(
        (app.filter.as_str(), app.rows.len(), app.quit),
        ("", 7, false)
    );
}

#[test]
fn problems_toggle_keeps_the_selection() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down); // c4
    press(&mut app, KeyCode::Char('p'));
    assert!(app.problems_only);
    assert_eq!(row_conns(&app), vec![2, 4, 5, 7, 6]);
    assert_eq!(selected_conn(&app), 4);
    let l = draw(&app, 100, 30);
    find(&l, "[problems]");
    press(&mut app, KeyCode::Char('p'));
    assert_eq!(app.rows.len(), 7);
    assert_eq!(selected_conn(&app), 4);
}

#[test]
fn next_and_previous_problem() {
    let mut app = fixtures::app();
    assert_eq!(selected_conn(&app), 1);
    let mut seen = vec![];
    for _ in 0..6 {
        press(&mut app, KeyCode::Char('n'));
        seen.push(selected_conn(&app));
    }
    // Problems in order, then wrap to the first problem.
    assert_eq!(seen, vec![2, 4, 5, 7, 6, 2]);
    press(&mut app, KeyCode::End); // c3, ok
    press(&mut app, KeyCode::Char('N'));
    assert_eq!(selected_conn(&app), 6);
    press(&mut app, KeyCode::Home);
    press(&mut app, KeyCode::Char('N')); // wraps backwards
    assert_eq!(selected_conn(&app), 6);
    assert_eq!(
        app.status.as_ref().map(|s| s.0.as_str()),
        Some("search wrapped around")
    );
    // No problems in view: the selection stays and a note says so.
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "VMD");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(selected_conn(&app), 1);
    assert!(app
        .status
        .as_ref()
        .is_some_and(|s| s.0.contains("no problem")));
}

#[test]
fn devices_view_counts() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('d'));
    assert!(app.show_devices);
    let l = draw(&app, 100, 30);
    // device events ok fail hs stalls stall_s
    let d5 = find(&l, "│10.0.0.5 ");
    let cols: Vec<&str> = d5.trim_matches('│').split_whitespace().collect();
    assert_eq!(
        &cols[..7],
        &["10.0.0.5", "3", "2", "1", "0", "1", "30.0s"],
        "{d5}"
    );
    assert!(d5.contains("linedetection x2, VMD x1"), "{d5}");
    // Last seen: the builder ends each connection 0.1 s after it starts, conn 3 at +35.1 s.
    assert_eq!(cols[7], "10:00:35.100", "{d5}");
    let d9: Vec<&str> = find(&l, "│10.0.0.9 ")
        .trim_matches('│')
        .split_whitespace()
        .collect();
    assert_eq!(&d9[..7], &["10.0.0.9", "0", "0", "0", "2", "0", "0.0s"]);
    let d7: Vec<&str> = find(&l, "│10.0.0.7 ")
        .trim_matches('│')
        .split_whitespace()
        .collect();
    assert_eq!(&d7[..7], &["10.0.0.7", "1", "0", "1", "0", "1", "50.0s"]);
    // Arrows move the device selection, d goes back.
    press(&mut app, KeyCode::Down);
    assert_eq!(app.device_selected, 1);
    press(&mut app, KeyCode::Char('d'));
    assert!(!app.show_devices);
}

#[test]
fn small_and_odd_sizes_do_not_panic() {
    let mut app = fixtures::app();
    let sizes = [
        (80, 24),
        (40, 10),
        (1, 1),
        (0, 0),
        (10, 3),
        (200, 5),
        (300, 80),
    ];
    for tab in ["1", "2", "3", "4"] {
        press(&mut app, KeyCode::Char(tab.chars().next().unwrap()));
        for row in 0..7 {
            app.selected = row;
            for (w, h) in sizes {
                draw(&app, w, h);
            }
        }
    }
    press(&mut app, KeyCode::Char('d'));
    for (w, h) in sizes {
        draw(&app, w, h);
    }
    press(&mut app, KeyCode::Char('d'));
    press(&mut app, KeyCode::Char('?'));
    for (w, h) in sizes {
        draw(&app, w, h);
    }
    // Empty app, loading.
    let mut empty = App::new(Source::Live("eth0".into()), Theme { color: true });
    empty.update(Msg::Feed(Feed::Progress(Progress {
        bytes_read: 5,
        file_size: 0,
        packets: 7,
    })));
    for (w, h) in sizes {
        draw(&empty, w, h);
    }
}

#[test]
fn at_80x24_the_essentials_fit() {
    let app = fixtures::app();
    let l = draw(&app, 80, 24);
    assert_eq!(l.len(), 24);
    let header = find(&l, "time");
    for col in ["device", "path", "event", "st", "verdict"] {
        assert!(header.contains(col), "{col} in {header}");
    }
    let counts = find(&l, "ok 2");
    for want in [
        "error 1",
        "no_resp 1",
        "incompl 1",
        "hs_fail 2",
        "stalls 3",
        "retries 1",
    ] {
        assert!(counts.contains(want), "{want} in {counts}");
    }
    find(&l, "q quit  ? help");
    let row = find(&l, "10:00:05");
    assert!(
        row.contains("10.0.0.5") && row.contains("no_response") && row.contains("S30.0s"),
        "{row}"
    );
    // Narrow: time, device, verdict survive.
    let l = draw(&app, 40, 10);
    assert!(
        l.iter().any(|x| x.contains("10:00:01") && x.contains("ok")),
        "{}",
        l.join("\n")
    );
}

#[test]
fn upsert_replaces_by_id_and_refresh_is_paced() {
    let mut app = App::new(Source::Live("eth0".into()), Theme { color: true });
    let conns = fixtures::capture();
    app.update(Msg::Feed(Feed::Upsert(conns.clone())));
    // The first batch shows at once.
    assert_eq!(app.rows.len(), 7);
    assert_eq!(app.summary.no_response, 1);
    // Connection 2 now answered: replaced, not added.
    let mut c2 = conns.iter().find(|c| c.id == 2).unwrap().clone();
    c2.exchanges[0].response = conns[0].exchanges[0].response.clone();
    c2.exchanges[0].verdict = crate::model::Verdict::of(&c2.exchanges[0]);
    assert_eq!(c2.exchanges[0].verdict, Verdict::Ok);
    app.update(Msg::Feed(Feed::Upsert(vec![c2])));
    assert_eq!(app.connection_count(), 7);
    // Not yet re-diagnosed: a tick right away is too early.
    app.update(Msg::Tick(Instant::now()));
    assert_eq!(app.summary.no_response, 1);
    app.update(Msg::Tick(Instant::now() + Duration::from_millis(400)));
    assert_eq!((app.summary.no_response, app.summary.ok), (0, 3));
    assert_eq!(app.rows.len(), 7);
    // A new connection is added.
    let mut c8 = conns[0].clone();
    c8.id = 8;
    app.update(Msg::Feed(Feed::Upsert(vec![c8])));
    app.update(Msg::Tick(Instant::now() + Duration::from_secs(5)));
    assert_eq!((app.connection_count(), app.rows.len()), (8, 8));
}

#[test]
fn selection_follows_its_row_across_refreshes() {
    let mut app = App::new(Source::Live("eth0".into()), Theme { color: true });
    let conns = fixtures::capture();
    // Only the later connections first.
    app.update(Msg::Feed(Feed::Upsert(conns[3..].to_vec())));
    app.selected = 1; // c7 at +15 (rows: c5 +12, c7 +15, c6 +20, c3 +35)
    assert_eq!(selected_conn(&app), 7);
    app.update(Msg::Feed(Feed::Upsert(conns[..3].to_vec())));
    app.update(Msg::Tick(Instant::now() + Duration::from_secs(1)));
    assert_eq!(selected_conn(&app), 7);
    assert_eq!(app.selected, 4);
}

#[test]
fn progress_gauge_and_error() {
    let mut app = App::new(Source::Replay("big.pcap".into()), Theme { color: true });
    app.update(Msg::Feed(Feed::Progress(Progress {
        bytes_read: 13_500_000,
        file_size: 27_000_000,
        packets: 120_345,
    })));
    let l = draw(&app, 100, 20);
    let g = find(&l, "50%");
    assert!(
        g.contains("13.5 MB / 27.0 MB") && g.contains("120,345 packets") && g.contains("ETA"),
        "{g}"
    );
    find(&l, "loading");
    app.update(Msg::Feed(Feed::Error(
        "big.pcap: not a pcap or pcapng capture".into(),
    )));
    let l = draw(&app, 100, 20);
    find(&l, "error: big.pcap: not a pcap or pcapng capture");
}

#[test]
fn save_asks_the_shell_to_re_read_the_connection() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    let cmd = press(&mut app, KeyCode::Char('s'));
    assert_eq!(
        cmd,
        Some(Cmd::Save {
            path: "fixture.pcap".into(),
            dir: "alarmscope-extract".into(),
            conn_id: 4,
            prefix: "c4-r0-".into()
        })
    );
    assert!(app.saving);
    // A second save while one runs is refused.
    assert_eq!(press(&mut app, KeyCode::Char('s')), None);
    app.update(Msg::SaveDone(SaveOutcome::Saved {
        dir: "alarmscope-extract".into(),
        files: ["c4-r0-p0-anpr.xml", "c4-r0-p1-a.jpg", "c4-r0-p2-b.jpg"]
            .map(String::from)
            .to_vec(),
    }));
    let l = draw(&app, 100, 30);
    find(&l, "saved 3 file(s)");
    assert!(app.status.as_ref().is_some_and(|s| !s.1), "not an error");
    // Rows without a request have nothing to save.
    press(&mut app, KeyCode::Down);
    assert_eq!(press(&mut app, KeyCode::Char('s')), None);
    assert!(app
        .status
        .as_ref()
        .is_some_and(|s| s.1 && s.0.contains("no request")));
    // Live mode cannot save.
    let mut live = App::new(Source::Live("eth0".into()), Theme { color: true });
    live.update(Msg::Feed(Feed::Upsert(fixtures::capture())));
    assert_eq!(live.update(Msg::Save), None);
    assert!(live.status.as_ref().is_some_and(|s| s.1));
}

#[test]
fn save_message_lists_this_exchanges_files() {
    let written: Vec<std::path::PathBuf> = [
        "x/c4-r0-p0-10.0.0.7-anpr.xml",
        "x/c4-r0-p1-10.0.0.7-a.jpg",
        "x/c4-r1-p0-10.0.0.7-b.xml",
    ]
    .iter()
    .map(Into::into)
    .collect();
    let m = save_message(std::path::Path::new("x"), "c4-r0-", &written, &[]);
    assert_eq!(
        m.to_string(),
        "saved 2 file(s) to x: c4-r0-p0-10.0.0.7-anpr.xml, c4-r0-p1-10.0.0.7-a.jpg"
    );
    assert!(!m.is_failure());
    let m = save_message(
        std::path::Path::new("x"),
        "c9-r0-",
        &written,
        &["disk full".into()],
    );
    assert!(m.is_failure());
    assert_eq!(
        m,
        SaveOutcome::WriteFailed {
            error: "disk full".into(),
            written: Box::new(SaveOutcome::NothingForExchange {
                connection_files: 3
            }),
        }
    );
    assert!(m.to_string().starts_with("save failed: disk full"), "{m}");
    // A save that failed shows as an error in the footer.
    let mut app = fixtures::app();
    app.update(Msg::SaveDone(m));
    assert!(app.status.as_ref().is_some_and(|s| s.1));
}

#[test]
fn keys_move_page_and_switch_focus_and_tabs() {
    let mut app = App::new(Source::Live("eth0".into()), Theme { color: true });
    app.update(Msg::Feed(Feed::Upsert(fixtures::many(500))));
    // 100x30: body 26 rows, list half of it = 13 with the border, 11 inside, 1 of them the
    // column header: a page is 10 rows.
    draw(&app, 100, 30);
    press(&mut app, KeyCode::PageDown);
    assert_eq!(app.selected, 10);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('k'));
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.selected, 11);
    press(&mut app, KeyCode::End);
    assert_eq!(app.selected, 499);
    press(&mut app, KeyCode::PageUp);
    assert_eq!(app.selected, 489);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Detail);
    // In the detail pane the arrows scroll instead of moving the selection.
    press(&mut app, KeyCode::Down);
    assert_eq!(app.selected, 489);
    press(&mut app, KeyCode::Left);
    assert_eq!(app.tab, Tab::Handshake);
    press(&mut app, KeyCode::Left);
    assert_eq!(app.tab, Tab::Diagnosis);
    press(&mut app, KeyCode::Char('h'));
    assert_eq!(app.tab, Tab::Response);
    press(&mut app, KeyCode::Char('?'));
    assert!(app.show_help);
    press(&mut app, KeyCode::Char('x'));
    assert!(!app.show_help);
    press(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
    let mut app2 = fixtures::app();
    app2.update(
        app2.key_to_msg(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))
            .unwrap(),
    );
    assert!(app2.quit);
}

#[test]
fn mouse_click_selects_and_wheel_scrolls() {
    let mut app = fixtures::app();
    draw(&app, 100, 30);
    let list = app.view.list.get();
    // Row 0 of the table is the column header; the third data row is at y + 3.
    let m = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 10,
        row: list.y + 3,
        modifiers: KeyModifiers::NONE,
    };
    let msg = app.mouse_to_msg(m).unwrap();
    app.update(msg);
    assert_eq!(selected_conn(&app), 4);
    let wheel = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 10,
        row: list.y + 1,
        modifiers: KeyModifiers::NONE,
    };
    let msg = app.mouse_to_msg(wheel).unwrap();
    app.update(msg);
    assert_eq!(selected_conn(&app), 6); // three rows further
                                        // Clicking a tab title in the detail pane selects it.
    let detail = app.view.detail.get();
    let click = |col| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: col,
        row: detail.y + 1,
        modifiers: KeyModifiers::NONE,
    };
    let l = draw(&app, 100, 30);
    let tabs = &l[(detail.y + 1) as usize];
    let x = tabs
        .chars()
        .collect::<Vec<_>>()
        .iter()
        .collect::<String>()
        .find("4 Diagnosis")
        .unwrap();
    let x = tabs[..x].chars().count() as u16;
    let msg = app.mouse_to_msg(click(x + 2)).unwrap();
    app.update(msg);
    assert_eq!(app.tab, Tab::Diagnosis);
    assert_eq!(app.focus, Focus::Detail);
}

#[test]
fn binary_body_is_shown_as_hex() {
    let mut conns = fixtures::capture();
    let ex = &mut conns[0].exchanges[0];
    ex.body_kind = "other";
    ex.event = None;
    ex.event_detail = None;
    ex.body_error = Some("not XML or JSON".into());
    ex.metadata = Some(String::from_utf8_lossy(b"\x00\x01JFIF\xff\xd8").into_owned());
    let mut app = App::new(Source::Live("eth0".into()), Theme { color: true });
    app.update(Msg::Feed(Feed::Upsert(conns)));
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Enter);
    let l = draw(&app, 120, 50);
    find(&l, "No event: not XML or JSON");
    find(&l, "Body bytes (hex");
    // 00 01 'J' 'F' 'I' 'F' then two replacement characters (ef bf bd each).
    let hex = find(&l, "00000000  00 01 4a 46 49 46 ef bf  bd ef bf bd");
    assert!(hex.contains("|..JFIF......|"), "{hex}");
    // The list says there was no event.
    press(&mut app, KeyCode::Enter);
    let l = draw(&app, 120, 50);
    assert!(find(&l, "10:00:01.000").contains("(no event)"));
}

#[test]
fn timestamps_in_fixture_are_what_the_table_says() {
    assert_eq!(ts(1.0).to_utc_string(), "2024-03-05 10:00:01.000");
}

/// The main screen at 100x30, printed for the README (`--nocapture` shows it).
#[test]
fn snapshot_100x30() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('n')); // the first problem
    let l = draw(&app, 100, 30);
    println!("{}", l.join("\n"));
    assert!(
        l[0].starts_with("alarmscope | replay fixture.pcap | done"),
        "{}",
        l[0]
    );
}

/// Render cost with a million exchanges loaded (run in release with --ignored --nocapture).
#[test]
#[ignore]
fn render_million_rows_timing() {
    let t = Instant::now();
    let conns = fixtures::many(1_000_000);
    let mut app = App::new(Source::Replay("million.pcap".into()), Theme { color: true });
    app.update(Msg::Feed(Feed::Final(crate::model::Report {
        source: "million.pcap".into(),
        connections: conns,
        ..Default::default()
    })));
    assert_eq!(app.rows.len(), 1_000_000);
    println!(
        "built and diagnosed 1,000,000 exchanges in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
    app.update(Msg::Move(500_000));
    let frames = 50;
    let t = Instant::now();
    for i in 0..frames {
        app.update(Msg::Move(if i % 2 == 0 { 1 } else { -1 }));
        term.draw(|f| render(f, &app)).unwrap();
    }
    let per = t.elapsed().as_secs_f64() * 1e3 / f64::from(frames);
    println!("render: {per:.3} ms per frame (200x50, 1,000,000 exchanges)");
    let t = Instant::now();
    app.update(Msg::ToggleProblems);
    println!(
        "problems-only filter over 1,000,000 rows: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(app.rows.len(), 20_000);
}

/// Warnings sent while a producer runs are counted in the header and listed under `w`, newest
/// last; past what fits, the older ones are said to be hidden; any key closes the list; the
/// final report's warnings add to them.
#[test]
fn warnings_are_counted_and_listed_under_w() {
    let mut app = fixtures::app();
    let before = draw(&app, 120, 30);
    assert!(!before.iter().any(|l| l.contains("warnings (w)")));
    for i in 1..=40 {
        app.update(Msg::Feed(Feed::Warning(format!(
            "WARN store: cannot append to the index (event {i})"
        ))));
    }
    let screen = draw(&app, 120, 30);
    assert!(find(&screen, "warnings (w)").contains("40 warnings (w)"));
    press(&mut app, KeyCode::Char('w'));
    let list = draw(&app, 120, 30);
    find(&list, " Warnings ");
    find(&list, "(event 40)");
    assert!(
        !list.iter().any(|l| l.contains("(event 1)")),
        "oldest hidden"
    );
    let shown = list.iter().filter(|l| l.contains("cannot append")).count();
    let hidden = 40 - shown;
    find(&list, &format!("{hidden} earlier warnings not shown"));
    // Oldest first: event 39 is drawn above event 40.
    let row = |n: &str| list.iter().position(|l| l.contains(n)).unwrap();
    assert!(row("(event 39)") < row("(event 40)"));
    press(&mut app, KeyCode::Char('x'));
    assert!(!app.show_warnings);
    assert!(!draw(&app, 120, 30).iter().any(|l| l.contains(" Warnings ")));
    // The final report's warnings are added, not put in their place.
    let mut r = fixtures::report();
    r.warnings = vec![crate::capture::Warning::NotShown { count: 7 }];
    app.update(Msg::Feed(Feed::Final(r)));
    assert_eq!(app.warnings.len(), 41);
    assert_eq!(
        app.warnings.last().map(String::as_str),
        Some("7 more warnings not shown")
    );
}

/// A disk failing on every event warns on every event: the list keeps the newest.
#[test]
fn warnings_are_bounded() {
    let mut app = fixtures::app();
    let n = super::app::MAX_WARNINGS + 25;
    for i in 0..n {
        app.update(Msg::Feed(Feed::Warning(format!("w{i}"))));
    }
    assert_eq!(app.warnings.len(), super::app::MAX_WARNINGS);
    assert_eq!(app.warnings_dropped, 25);
    assert_eq!(app.warnings[0], "w25");
    find(&draw(&app, 120, 30), &format!("{n} warnings (w)"));
}

/// A listener sees connections but no packets: its header has no "0 packets"; a replay's
/// header always counts them.
#[test]
fn live_header_counts_packets_only_when_there_are_some() {
    let mut live = App::new(
        Source::Live("listen 0.0.0.0:8080".into()),
        Theme { color: true },
    );
    live.update(Msg::Feed(Feed::Upsert(fixtures::capture())));
    let line = draw(&live, 120, 30)[1].clone();
    assert!(line.contains(" connections"), "{line}");
    assert!(!line.contains("packets"), "{line}");
    let replay = App::new(Source::Replay("x.pcap".into()), Theme { color: true });
    assert!(draw(&replay, 120, 30)[1].contains("0 packets, 0 connections"));
}

/// The detail pane scrolls to the end of its text and no further: at the end its last row shows
/// text, one row further it would be blank. Checked on the screen, not against the limit's sum.
#[test]
fn detail_scroll_stops_at_the_end_of_the_text() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('2')); // the request: headers and body, longer than the pane
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Detail);
    draw(&app, 100, 30);
    let text = app.view.detail_text.get();
    let bottom = (text.y + text.height - 1) as usize;
    let bottom_of = |l: &[String]| -> String {
        l[bottom]
            .chars()
            .skip(text.x as usize)
            .take(text.width as usize)
            .collect::<String>()
    };
    for _ in 0..50 {
        press(&mut app, KeyCode::PageDown);
        draw(&app, 100, 30);
    }
    let end = app.detail_scroll;
    assert!(end > 0, "the request is longer than the pane");
    press(&mut app, KeyCode::Down);
    assert_eq!(app.detail_scroll, end, "Down at the end stays there");
    let at_end = draw(&app, 100, 30);
    assert!(
        !bottom_of(&at_end).trim().is_empty(),
        "{}",
        at_end.join("\n")
    );
    // Clicking the wheel up and down again comes back to the same end.
    let wheel = |kind| MouseEvent {
        kind,
        column: text.x + 1,
        row: text.y + 1,
        modifiers: KeyModifiers::NONE,
    };
    app.update(app.mouse_to_msg(wheel(MouseEventKind::ScrollUp)).unwrap());
    assert_eq!(app.detail_scroll, end - 3);
    draw(&app, 100, 30);
    app.update(app.mouse_to_msg(wheel(MouseEventKind::ScrollDown)).unwrap());
    app.update(app.mouse_to_msg(wheel(MouseEventKind::ScrollDown)).unwrap());
    assert_eq!(app.detail_scroll, end);
    // One row past the end, the pane's last row would be blank.
    app.detail_scroll = end + 1;
    let past = draw(&app, 100, 30);
    assert!(bottom_of(&past).trim().is_empty(), "{}", past.join("\n"));
}

/// The request tab pretty-prints metadata by the same "XML or JSON?" rule as the decoder: a UTF-8
/// BOM before the XML (which the decoder read as XML) does not make the TUI show it raw.
#[test]
fn metadata_with_a_bom_is_shown_as_xml() {
    let mut conns = fixtures::capture();
    let ex = &mut conns[0].exchanges[0];
    ex.metadata = Some(
        "\u{feff}<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>"
            .into(),
    );
    let mut app = App::new(Source::Live("eth0".into()), Theme { color: true });
    app.update(Msg::Feed(Feed::Upsert(conns)));
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Enter);
    let l = draw(&app, 120, 60);
    find(&l, "Metadata (XML)");
    find(&l, "    <eventType>VMD</eventType>");
}

/// An app that received the replay of a bundled sample (through the whole pipeline).
fn sample_app(name: &str) -> App {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name);
    let r = crate::replay::replay(
        &path,
        crate::replay::ReplayOptions::default(),
        &mut |_| {},
        &mut |_| {},
    )
    .expect("sample opens");
    let mut a = App::new(Source::Replay(name.into()), Theme { color: true });
    a.update(Msg::Feed(Feed::Final(r)));
    a
}

#[test]
fn https_rows_are_marked_encrypted_with_no_status_and_the_tls_facts_in_the_detail() {
    let mut app = sample_app("https-tls12.pcap");
    let l = draw(&app, 140, 40);
    let row = find(&l, "HTTPS (encrypted)");
    assert!(
        row.contains("encrypted_an") && row.contains(" ? ") && !row.contains(" 200 "),
        "{row}"
    );
    assert!(row.trim_end_matches(['│', ' ']).ends_with('E'), "{row}");
    // Handshake tab: the TLS section with the readable TLS 1.2 certificate.
    press(&mut app, KeyCode::Char('1'));
    press(&mut app, KeyCode::Enter);
    let text = pane_text(&draw(&app, 140, 60));
    for want in [
        "chosen: TLS 1.2",
        "SNI: alarm.example",
        "CN=alarm.example issued by CN=alarm.example (self-signed)",
        "handshake: completed",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    // Response tab: an encrypted answer, never a status.
    press(&mut app, KeyCode::Char('3'));
    let text = pane_text(&draw(&app, 140, 40));
    assert!(text.contains("Encrypted answer (status unknown)"), "{text}");
    assert!(!text.contains("HTTP 200"), "{text}");
}

#[test]
fn tls_failures_are_problem_rows_with_their_explanation() {
    let mut app = sample_app("https-unknown-ca.pcap");
    let l = draw(&app, 140, 40);
    let row = find(&l, "(TLS handshake failed: device alert unknown_ca)");
    assert!(row.contains("tls_alert"), "{row}");
    // Both attempts are problems: the problems-only view keeps them.
    press(&mut app, KeyCode::Char('p'));
    assert_eq!(app.rows.len(), 2);
    press(&mut app, KeyCode::Char('4'));
    press(&mut app, KeyCode::Enter);
    let text = pane_text(&draw(&app, 140, 60));
    assert!(text.contains("TLS problem: handshake_alert"), "{text}");
    assert!(
        text.contains("the device does not trust the server's certificate"),
        "{text}"
    );

    let app = sample_app("https-to-http.pcap");
    let l = draw(&app, 140, 40);
    let row = find(&l, "(HTTPS hello, the server speaks plain HTTP)");
    assert!(row.contains("https->http"), "{row}");

    // Plain HTTP to a TLS port: the request rows are no_response; the diagnosis names HTTPS.
    let mut app = sample_app("http-to-https.pcap");
    press(&mut app, KeyCode::Char('p'));
    press(&mut app, KeyCode::Char('4'));
    press(&mut app, KeyCode::Enter);
    let text = pane_text(&draw(&app, 140, 60));
    assert!(
        text.contains("TLS problem: plain_http_to_tls_server"),
        "{text}"
    );
    assert!(
        text.contains("alarmscope device set --protocol HTTPS"),
        "{text}"
    );
}

/// A replayed capture keeps compact rows only: opening a row reads its connection again from the
/// file, and the detail pane shows what the rows do not keep (headers, event fields).
#[test]
fn replayed_row_opens_with_headers_and_event_read_again_from_the_capture() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/multipart-anpr.pcap");
    let (mut app, rx) =
        super::start_replay(&path, crate::replay::ReplayOptions::default()).expect("starts");
    for f in rx {
        app.update(Msg::Feed(f));
    }
    assert!(app.finished && app.error.is_none());
    assert!(matches!(app.details, super::app::Details::Capture { .. }));
    // The rows keep no header and no MAC-less event field: those come from the file.
    let kept = (1..=app.store.strings() as u32).map(|s| app.store.str(s).to_string());
    let kept: Vec<String> = kept.collect();
    assert!(
        !kept.iter().any(|s| s.contains("Accept-Language")),
        "{kept:?}"
    );
    let i = app
        .rows
        .iter()
        .position(|r| {
            app.row(*r)
                .is_some_and(|row| app.store.str(row.event).contains("AB123CD"))
        })
        .expect("the ANPR row");
    app.selected = i;
    app.tab = Tab::Request;
    let screen = draw(&app, 160, 70).join("\n");
    assert!(screen.contains("Accept-Language"), "{screen}");
    assert!(screen.contains("2024-05-14T10:21:40+08:00"), "{screen}");
}

/// A live source replaces a connection that gained an exchange: the rows are built again (their
/// indices shift) and the selection stays on its exchange.
#[test]
fn selection_stays_on_its_exchange_when_a_replaced_connection_grows() {
    let mut app = App::new(Source::Live("eth0".into()), Theme { color: true });
    let conns = fixtures::capture();
    app.update(Msg::Feed(Feed::Upsert(conns.clone())));
    app.selected = 2; // c4 at +10 (rows: c1 +1, c2 +5, c4 +10, ...)
    assert_eq!(selected_conn(&app), 4);
    // Connection 1 (first in memory) now carries a second request, at +2.
    let mut c1 = conns.iter().find(|c| c.id == 1).unwrap().clone();
    let mut second = c1.exchanges[0].clone();
    second.index = 1;
    second.request.time = ts(2.0);
    c1.exchanges.push(second);
    app.update(Msg::Feed(Feed::Upsert(vec![c1])));
    app.update(Msg::Tick(Instant::now() + Duration::from_secs(1)));
    assert_eq!(app.rows.len(), 8);
    assert_eq!(row_conns(&app), vec![1, 1, 2, 4, 5, 7, 6, 3]);
    assert_eq!(selected_conn(&app), 4);
    assert_eq!(app.selected, 3);
}

/// Exporting the problem rows chooses their whole connections (addresses and time range) as
/// the export module chooses them from the connections themselves, though the rows keep no
/// connection.
#[test]
fn export_of_problem_rows_selects_their_whole_connections() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('x'));
    let cmd = press(&mut app, KeyCode::Char('p'));
    let Some(Cmd::Export { selection, .. }) = cmd else {
        panic!("{cmd:?}")
    };
    let mut conns = fixtures::capture();
    conns.sort_by_key(|c| c.first_seen);
    let mut want = crate::export::Selection::default();
    for c in conns.iter().filter(|c| [2, 4, 5, 6, 7].contains(&c.id)) {
        want.add(c);
    }
    assert_eq!(selection.len(), 5);
    assert_eq!(selection, want);
}
