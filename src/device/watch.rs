//! The device's alertStream, read live: a thread that keeps `GET
//! /ISAPI/Event/notification/alertStream` open (digest authentication, reconnecting when it
//! drops) and hands what the sans-IO [`AlertStreamDecoder`] finds to a channel, each message
//! stamped with the time it arrived. Used by `device watch` and by doctor's live step.

use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{DeviceError, IsapiClient};
use crate::isapi::alert_stream::{AlertStreamDecoder, StreamItem};
use crate::isapi::body::content_type_param;

/// Where the stream is read from.
pub const ALERT_STREAM: &str = "/ISAPI/Event/notification/alertStream";

/// What the stream thread reports.
#[derive(Debug)]
pub enum StreamMsg {
    /// The stream is open (again).
    Connected,
    Item(StreamItem),
    /// The stream ended or failed; the thread reconnects after a second.
    Dropped(String),
    /// The device will not give the stream (403, 404, wrong password): the thread stops.
    Unavailable(String),
}

/// How to log in (a new client is made on the thread).
#[derive(Debug, Clone)]
pub struct StreamLogin {
    pub device: String,
    pub user: String,
    pub password: String,
    pub insecure: bool,
    /// Connect and header timeout.
    pub timeout: Duration,
}

fn final_error(e: &DeviceError) -> bool {
    matches!(
        e,
        DeviceError::Forbidden { .. }
            | DeviceError::NotSupported { .. }
            | DeviceError::NotIsapi { .. }
            | DeviceError::WrongPassword { .. }
            | DeviceError::NoDigest { .. }
            | DeviceError::Usage(_)
            | DeviceError::Http { .. }
    )
}

/// Read the stream on a new thread until `until` or `stop`. Messages go to `tx` with their
/// arrival time; the thread ends by itself (each connection is bounded by `until`).
pub fn spawn_stream(
    login: StreamLogin,
    until: Option<Instant>,
    stop: Arc<AtomicBool>,
    tx: Sender<(Instant, StreamMsg)>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("alarmscope-alertstream".into())
        .spawn(move || {
            let send = |m: StreamMsg| tx.send((Instant::now(), m)).is_ok();
            let mut client = match IsapiClient::new(
                &login.device,
                &login.user,
                &login.password,
                login.insecure,
                login.timeout,
            ) {
                Ok(c) => c,
                Err(e) => {
                    send(StreamMsg::Unavailable(e.to_string()));
                    return;
                }
            };
            let mut buf = vec![0u8; 16 * 1024];
            let mut items = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // A day at most per connection without a deadline: the loop reconnects.
                let left = until.map_or(Duration::from_secs(86_400), |u| {
                    u.saturating_duration_since(Instant::now())
                });
                if left.is_zero() {
                    return;
                }
                let answer =
                    match client.open_stream(ALERT_STREAM, left + Duration::from_millis(500)) {
                        Ok(a) => a,
                        Err(e) => {
                            if final_error(&e) {
                                send(StreamMsg::Unavailable(e.to_string()));
                                return;
                            }
                            if !send(StreamMsg::Dropped(e.to_string())) {
                                return;
                            }
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    };
                if !send(StreamMsg::Connected) {
                    return;
                }
                let boundary = content_type_param(&answer.content_type, "boundary");
                let mut dec = AlertStreamDecoder::new(boundary.as_deref());
                let mut body = answer.body;
                let why = loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match body.read(&mut buf) {
                        Ok(0) => break "the device closed the stream".to_string(),
                        Ok(n) => {
                            dec.feed(buf.get(..n).unwrap_or_default(), &mut items);
                            for it in items.drain(..) {
                                if !send(StreamMsg::Item(it)) {
                                    return;
                                }
                            }
                        }
                        Err(e) => break e.to_string(),
                    }
                };
                dec.finish(&mut items);
                for it in items.drain(..) {
                    send(StreamMsg::Item(it));
                }
                if until.is_some_and(|u| Instant::now() >= u) {
                    return;
                }
                if !send(StreamMsg::Dropped(why)) {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
}

/// One listed event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WatchRow {
    /// Arrival on this machine (UTC).
    pub time: String,
    /// Part index on its connection.
    pub part: u64,
    pub event: crate::model::EventSummary,
}

impl WatchRow {
    /// The text line: arrival, type, state, channel, the device's own time.
    pub fn line(&self) -> String {
        let e = &self.event;
        format!(
            "{} {} {} ch{} {}",
            self.time.get(11..).unwrap_or(&self.time),
            e.event_type.as_deref().unwrap_or("?"),
            e.event_state.as_deref().unwrap_or("-"),
            e.channel.as_deref().unwrap_or("-"),
            e.date_time.as_deref().unwrap_or("(no dateTime)"),
        )
    }
}

/// Most rows kept for the live list (the oldest go first).
pub const MAX_ROWS: usize = 10_000;

/// What `device watch` shows: the events (keep-alives counted, not listed), stream problems
/// and drops. Pure: fed [`StreamMsg`]s with their arrival time.
#[derive(Debug, Default)]
pub struct WatchState {
    pub rows: std::collections::VecDeque<WatchRow>,
    pub events: u64,
    pub keepalives: u64,
    pub problems: u64,
    pub drops: u64,
    pub connected: bool,
    /// Last drop or stream problem, for the header.
    pub last_note: Option<String>,
}

/// What a message means for the output.
#[derive(Debug, Clone)]
pub enum WatchOutput {
    Row(Box<WatchRow>),
    Note(String),
    Nothing,
}

impl WatchState {
    /// Take one message; returns what to print.
    pub fn on_msg(&mut self, time: String, msg: StreamMsg) -> WatchOutput {
        match msg {
            StreamMsg::Connected => {
                self.connected = true;
                WatchOutput::Note("alertStream open".into())
            }
            StreamMsg::Dropped(d) | StreamMsg::Unavailable(d) => {
                self.connected = false;
                self.drops += 1;
                self.last_note = Some(d.clone());
                WatchOutput::Note(format!("alertStream: {d}"))
            }
            StreamMsg::Item(StreamItem::Event { index, event }) => {
                if crate::isapi::alert_stream::is_keepalive(&event) {
                    self.keepalives += 1;
                    return WatchOutput::Nothing;
                }
                self.events += 1;
                let row = WatchRow {
                    time,
                    part: index,
                    event: crate::model::EventSummary::from(event.as_ref()),
                };
                if self.rows.len() >= MAX_ROWS {
                    self.rows.pop_front();
                }
                self.rows.push_back(row.clone());
                WatchOutput::Row(Box::new(row))
            }
            StreamMsg::Item(StreamItem::Problem(p)) => {
                self.problems += 1;
                self.last_note = Some(p.to_string());
                WatchOutput::Note(p.to_string())
            }
            StreamMsg::Item(StreamItem::End) => {
                WatchOutput::Note("the device ended the stream".into())
            }
            StreamMsg::Item(StreamItem::Attachment { .. }) => WatchOutput::Nothing,
        }
    }

    /// The counts line.
    pub fn summary(&self) -> String {
        format!(
            "{} events, {} keep-alives, {} stream problems, {} drops",
            self.events, self.keepalives, self.problems, self.drops
        )
    }

    /// The live list: a header with the counts, the newest rows that fit.
    pub fn draw(&self, f: &mut ratatui::Frame<'_>, title: &str) {
        use ratatui::layout::{Constraint, Layout};
        use ratatui::widgets::{Block, Borders, List, ListItem, Paragraph};
        let [head, body] =
            Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(f.area());
        let state = if self.connected {
            "open"
        } else {
            "not connected"
        };
        let note = self.last_note.as_deref().unwrap_or("");
        f.render_widget(
            Paragraph::new(format!(
                "alarmscope | device watch {title} | {state} | q quits\n{}  {note}",
                self.summary()
            )),
            head,
        );
        let fit = usize::from(body.height.saturating_sub(2));
        let items: Vec<ListItem> = self
            .rows
            .iter()
            .skip(self.rows.len().saturating_sub(fit))
            .map(|r| ListItem::new(r.line()))
            .collect();
        f.render_widget(
            List::new(items).block(Block::default().borders(Borders::ALL).title(" Events ")),
            body,
        );
    }
}

fn utc_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::time::Timestamp::from_nanos(d.as_secs() as i64, i64::from(d.subsec_nanos()))
        .to_utc_string()
}

/// Run `alarmscope device watch`: the TUI when stdout is a terminal (and no `--json`), else
/// lines until `--duration` (or the stream becomes unavailable).
pub fn run(w: &super::WatchArgs) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let c = &w.conn;
    let password = c.password()?;
    // The URL is checked before the thread starts.
    c.client(&password)?;
    let until = w
        .duration
        .filter(|d| d.is_finite() && *d >= 0.0)
        .and_then(|d| Duration::try_from_secs_f64(d.min(1e9)).ok())
        .map(|d| std::time::Instant::now() + d);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let login = c.stream_login(&password);
    spawn_stream(login, until, stop.clone(), tx)?;
    let mut state = WatchState::default();
    let tui = !c.json && std::io::stdout().is_terminal();
    let over =
        |until: Option<std::time::Instant>| until.is_some_and(|u| std::time::Instant::now() >= u);
    if tui {
        use crossterm::event::{poll, read, Event, KeyCode, KeyModifiers};
        let mut term = ratatui::init();
        let result = (|| -> anyhow::Result<()> {
            loop {
                while let Ok((_, m)) = rx.try_recv() {
                    state.on_msg(utc_now(), m);
                }
                term.draw(|f| state.draw(f, &c.device))?;
                if over(until) {
                    return Ok(());
                }
                if poll(Duration::from_millis(100))? {
                    if let Event::Key(k) = read()? {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        if matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                            return Ok(());
                        }
                    }
                }
            }
        })();
        ratatui::restore();
        stop.store(true, Ordering::Relaxed);
        eprintln!("alarmscope: {}", state.summary());
        return result;
    }
    let mut out = std::io::stdout().lock();
    let mut unavailable = None;
    loop {
        if over(until) {
            break;
        }
        let m = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((_, m)) => m,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(_) => break,
        };
        if let StreamMsg::Unavailable(d) = &m {
            unavailable = Some(d.clone());
        }
        match state.on_msg(utc_now(), m) {
            WatchOutput::Row(r) if c.json => writeln!(out, "{}", serde_json::to_string(&r)?)?,
            WatchOutput::Row(r) => writeln!(out, "{}", r.line())?,
            WatchOutput::Note(n) if c.json => {
                writeln!(out, "{}", serde_json::json!({"time": utc_now(), "note": n}))?
            }
            WatchOutput::Note(n) => eprintln!("alarmscope: {n}"),
            WatchOutput::Nothing => {}
        }
        out.flush()?;
        if unavailable.is_some() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    if c.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"summary": {"events": state.events, "keepalives": state.keepalives,
                "stream_problems": state.problems, "drops": state.drops}})
        )?;
    }
    eprintln!("alarmscope: {}", state.summary());
    match unavailable {
        Some(d) => anyhow::bail!("alertStream unavailable: {d}"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isapi::decode_event;

    fn ev(body: &str) -> StreamMsg {
        StreamMsg::Item(StreamItem::Event {
            index: 0,
            event: Box::new(decode_event(body.as_bytes(), None).unwrap()),
        })
    }

    #[test]
    fn keepalives_are_counted_not_listed() {
        let mut w = WatchState::default();
        let t = || "2026-12-02 10:00:00.000".to_string();
        assert!(matches!(
            w.on_msg(t(), StreamMsg::Connected),
            WatchOutput::Note(_)
        ));
        let vmd = "<EventNotificationAlert><channelID>2</channelID><dateTime>2026-12-02T11:00:00+01:00</dateTime><eventType>VMD</eventType><eventState>active</eventState></EventNotificationAlert>";
        let hb = "<EventNotificationAlert><eventType>videoloss</eventType><eventState>inactive</eventState></EventNotificationAlert>";
        match w.on_msg(t(), ev(vmd)) {
            WatchOutput::Row(r) => assert_eq!(
                r.line(),
                "10:00:00.000 VMD active ch2 2026-12-02T11:00:00+01:00"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(w.on_msg(t(), ev(hb)), WatchOutput::Nothing));
        assert!(matches!(w.on_msg(t(), ev(hb)), WatchOutput::Nothing));
        w.on_msg(t(), StreamMsg::Dropped("reset".into()));
        assert_eq!(
            (w.events, w.keepalives, w.drops, w.rows.len()),
            (1, 2, 1, 1)
        );
        assert!(!w.connected);
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 8)).unwrap();
        term.draw(|f| w.draw(f, "http://d")).unwrap();
        let screen: String = term
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(screen.contains("1 events, 2 keep-alives"), "{screen}");
        assert!(screen.contains("VMD active ch2"), "{screen}");
        assert!(!screen.contains("videoloss"), "{screen}");
    }
}
