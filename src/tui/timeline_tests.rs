//! Tests of the time line: the pure bucket function over the hand-worked fixture table
//! (`fixtures.rs`) and over a recorded sample, and the view drawn on a `TestBackend`.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Msg, Source};
use super::fixtures::{self, draw, find, ts};
use super::theme::Theme;
use super::timeline::{buckets, data_span, lanes, row_time, Span, StallMark};
use super::Feed;

fn press(app: &mut App, c: KeyCode) {
    if let Some(m) = app.key_to_msg(KeyEvent::new(c, KeyModifiers::NONE)) {
        app.update(m);
    }
}

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
    let mut a = App::new(Source::Replay(name.into()), Theme { color: false });
    a.update(Msg::Feed(Feed::Final(r)));
    a
}

/// One bucket per second of the fixture capture (T0 .. T0+60 s).
fn fixture_span() -> Span {
    Span::new(ts(0.0).0, ts(60.0).0)
}

#[test]
fn fixture_buckets_hold_the_hand_worked_events_failures_and_stalls() {
    let app = fixtures::app();
    let b = buckets(
        &app.store,
        &app.rows,
        app.stall_at.values(),
        fixture_span(),
        60,
        None,
    );
    // Rows at +1 +5 +10 +12 +15 +20 +35; all but +1 and +35 are problems.
    let events: Vec<usize> = (0..60).filter(|i| b[*i].events > 0).collect();
    assert_eq!(events, [1, 5, 10, 12, 15, 20, 35]);
    let failed: Vec<usize> = (0..60).filter(|i| b[*i].failures > 0).collect();
    assert_eq!(failed, [5, 10, 12, 15, 20]);
    assert_eq!(b[1].max_latency_ms, Some(12.5));
    assert_eq!(b[5].max_latency_ms, None);
    // Stalls: 10.0.0.5 +5..+35, 10.0.0.7 from +10 and 10.0.0.8 from +15 to the end (open).
    for i in [5, 10, 15] {
        assert_eq!(b[i].stall, StallMark::Start, "bucket {i}");
    }
    assert_eq!(b[4].stall, StallMark::None);
    assert_eq!(b[7].stall, StallMark::Held);
    assert_eq!(b[12].stall, StallMark::HeldOpen);
    assert_eq!(b[59].stall, StallMark::HeldOpen);

    // One device: its three rows and its one closed stall.
    let d = buckets(
        &app.store,
        &app.rows,
        app.stall_at.values(),
        fixture_span(),
        60,
        Some("10.0.0.5"),
    );
    let events: Vec<usize> = (0..60).filter(|i| d[*i].events > 0).collect();
    assert_eq!(events, [1, 5, 35]);
    assert_eq!(d[5].stall, StallMark::Start);
    assert!((6..=35).all(|i| d[i].stall == StallMark::Held));
    assert_eq!(d[36].stall, StallMark::None);
    assert_eq!(d[10].failures, 0);
}

#[test]
fn lanes_split_the_rows_by_device_in_order_of_first_row() {
    let app = fixtures::app();
    let (l, dropped) = lanes(
        &app.store,
        &app.rows,
        app.stall_at.values(),
        fixture_span(),
        60,
        None,
    );
    assert_eq!(dropped, 0);
    let names: Vec<&str> = l.iter().map(|l| l.device.as_str()).collect();
    assert_eq!(names, ["10.0.0.5", "10.0.0.7", "10.0.0.9", "10.0.0.8"]);
    let count = |i: usize| l[i].buckets.iter().map(|b| b.events).sum::<u32>();
    assert_eq!((count(0), count(1), count(2), count(3)), (3, 1, 2, 1));
    assert_eq!(l[1].buckets[10].stall, StallMark::Start);
    assert_eq!(l[1].buckets[30].stall, StallMark::HeldOpen);
    assert_eq!(l[0].buckets[30].stall, StallMark::Held);
    assert_eq!(l[2].buckets[30].stall, StallMark::None);
}

#[test]
fn buckets_are_bounded_whatever_the_width_asked() {
    let app = fixtures::app();
    let b = buckets(&app.store, &app.rows, [], fixture_span(), 1_000_000, None);
    assert_eq!(b.len(), super::timeline::MAX_BUCKETS);
    assert_eq!(b.iter().map(|b| b.events).sum::<u32>(), 7);
}

#[test]
fn stall_sample_shows_the_held_events_after_the_unanswered_push() {
    let app = sample_app("stall-no-answer.pcap");
    let span = data_span(&app).expect("a span");
    let n = 100;
    let b = buckets(&app.store, &app.rows, app.stall_at.values(), span, n, None);
    // 4 requests: ok, no_response, no_response (retry), ok.
    assert_eq!(b.iter().map(|b| b.events).sum::<u32>(), 4);
    assert_eq!(b.iter().map(|b| b.failures).sum::<u32>(), 2);
    assert_eq!(b.iter().filter(|b| b.max_latency_ms.is_some()).count(), 2);
    // The third event was held ~4.7 s of the capture: the stall band covers that much.
    let per = span.nanos() as f64 / n as f64 / 1e9;
    let held = b.iter().filter(|b| b.stall != StallMark::None).count() as f64 * per;
    assert!((4.0..6.0).contains(&held), "held {held} s");
    // It starts at the first unanswered push's bucket, and the last event (answered) ends it.
    let t2 = row_time(&app.store, app.rows[1]).expect("time");
    assert_eq!(
        b[span.bucket_of(t2, n).expect("in span")].stall,
        StallMark::Start
    );
    let last = b.iter().rposition(|b| b.events > 0).expect("events");
    assert_eq!(b[last].failures, 0);
    assert!(b[last + 1..].iter().all(|b| b.stall == StallMark::None));
}

#[test]
fn time_line_at_80x24_marks_the_stall_failures_and_cursor() {
    let mut app = sample_app("stall-no-answer.pcap");
    press(&mut app, KeyCode::Char('t'));
    assert!(app.timeline.open);
    let l = draw(&app, 80, 24);
    find(&l, "Time line");
    let stalls = find(&l, "│stalls");
    assert!(stalls.contains('S') && stalls.contains('═'), "{stalls}");
    let failed = find(&l, "│failed");
    assert_eq!(failed.matches('x').count(), 2, "{failed}");
    let events = find(&l, "│events");
    assert!(events.contains('█'), "{events}");
    find(&l, "│answer");
    find(&l, "▲");
    // The list is still there, below.
    find(&l, "linedetection");
    // Closing it gives the screen back.
    press(&mut app, KeyCode::Char('t'));
    let l = draw(&app, 80, 24);
    assert!(!l.iter().any(|r| r.contains("Time line")));
}

#[test]
fn time_line_at_200x60_draws_one_lane_per_device() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('t'));
    let l = draw(&app, 200, 60);
    find(&l, "│stalls");
    press(&mut app, KeyCode::Char('a'));
    let l = draw(&app, 200, 60);
    for d in ["10.0.0.5", "10.0.0.7", "10.0.0.9", "10.0.0.8"] {
        find(&l, &format!("│{d}"));
    }
    // 10.0.0.7: its 503 then an open stall to the end of the capture.
    let lane = find(&l, "│10.0.0.7");
    assert!(lane.contains("x…") && lane.contains("………"), "{lane}");
    let lane = find(&l, "│10.0.0.5");
    assert!(lane.contains("x═") && lane.contains("═══"), "{lane}");
    // The detail pane is still drawn beside the list.
    find(&l, "Detail");
}

#[test]
fn cursor_walks_every_row_in_time_order_and_the_list_follows() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('t'));
    draw(&app, 80, 24);
    press(&mut app, KeyCode::Char('0'));
    for _ in 0..200 {
        press(&mut app, KeyCode::Char('h'));
    }
    let mut seen = vec![app.selected];
    for _ in 0..200 {
        press(&mut app, KeyCode::Char('l'));
        if seen.last() != Some(&app.selected) {
            seen.push(app.selected);
        }
        // The selected row is in the cursor's bucket, or the bucket is empty.
        let c = app.timeline.cursor.expect("cursor set");
        let t = row_time(&app.store, app.rows[app.selected]).expect("time");
        assert!(t <= c + 1_000_000_000, "row at {t}, cursor at {c}");
    }
    assert_eq!(seen, (0..app.rows.len()).collect::<Vec<_>>());
    // Moving in the list puts the cursor back on the selected row.
    press(&mut app, KeyCode::Up);
    assert_eq!(app.timeline.cursor, None);
}

#[test]
fn zoom_halves_the_span_and_zoom_to_device_covers_its_rows() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('t'));
    draw(&app, 80, 24);
    let whole = data_span(&app).expect("span");
    press(&mut app, KeyCode::Char('+'));
    let z = app.timeline.zoom.expect("zoomed");
    assert_eq!(z.nanos(), whole.nanos() / 2);
    assert!(z.from >= whole.from && z.to <= whole.to);
    press(&mut app, KeyCode::Char('-'));
    assert_eq!(app.timeline.zoom, None);
    // First row: 10.0.0.5, rows at +1 and +35 (and its stall to +35).
    press(&mut app, KeyCode::Char('z'));
    assert_eq!(app.timeline.device.as_deref(), Some("10.0.0.5"));
    let z = app.timeline.zoom.expect("zoomed to the device");
    assert!(z.from <= ts(1.0).0 && z.to > ts(35.0).0, "{z:?}");
    assert!(z.to < ts(40.0).0, "{z:?}");
    let l = draw(&app, 80, 24);
    find(&l, "Time line: 10.0.0.5");
    press(&mut app, KeyCode::Char('z'));
    assert_eq!(app.timeline.device, None);
}

#[test]
fn the_time_line_follows_the_list_filter_from_one_frame_to_the_next() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('t'));
    let marks = |app: &App| {
        let l = draw(app, 120, 30);
        let row = find(&l, "│events").to_string();
        row.trim_start_matches("│events")
            .chars()
            .filter(|c| !matches!(c, ' ' | '│'))
            .count()
    };
    // 7 rows at 7 different seconds; the problems only: 5 of them.
    assert_eq!(marks(&app), 7);
    press(&mut app, KeyCode::Char('p'));
    assert_eq!(marks(&app), 5);
}

#[test]
fn moving_past_the_edge_of_a_zoomed_view_pans_it() {
    let mut app = fixtures::app();
    press(&mut app, KeyCode::Char('t'));
    draw(&app, 80, 24);
    let whole = data_span(&app).expect("span");
    press(&mut app, KeyCode::Char('0'));
    press(&mut app, KeyCode::Home);
    // Zoomed four times around the first row: the last row (+35 s) is out of view.
    for _ in 0..4 {
        press(&mut app, KeyCode::Char('+'));
    }
    let z = app.timeline.zoom.expect("zoomed");
    assert!(z.to < ts(35.0).0, "{z:?}");
    // One bucket at a time (`L` jumps ten and may step over a row).
    for _ in 0..1500 {
        press(&mut app, KeyCode::Char('l'));
    }
    let z = app.timeline.zoom.expect("still zoomed");
    // Panned to the end of the capture, the width kept; the last row selected on the way.
    assert_eq!(z.to, whole.to);
    assert!(z.nanos() < whole.nanos() / 8);
    assert_eq!(app.selected, app.rows.len() - 1);
}
