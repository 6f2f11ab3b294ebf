//! Step 4's shell: a temporary listener (the project's [`crate::listen`], no faults, nothing
//! stored), the device's host test, and the alertStream watched against the pushes that
//! arrive. Both sides are stamped on one clock (milliseconds since the watch began) and handed
//! to the pure [`super::judge::compare`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::check::{EventRef, Finding, TestResult};
use super::judge::{compare, unpaired_pushes, Pushed, Seen};
use super::DoctorArgs;
use crate::device::client::IsapiClient;
use crate::device::hosts::{parse_test_result, render_slot, ApiFormat, HostSlot};
use crate::device::watch::{spawn_stream, StreamLogin, StreamMsg};
use crate::device::{fetch, with_json, ApiArg};
use crate::isapi::alert_stream::{is_keepalive, is_keepalive_type, StreamItem};
use crate::isapi::EventInfo;
use crate::listen::{EventRecord, ListenHandle, ListenOptions, ListenUpdate};

/// Most events (and, apart, pushes) compared: pairing is quadratic in the worst case, and this
/// keeps memory and time bounded however busy the device (a camera makes a few events a second).
pub const MAX_COMPARED: usize = 20_000;

/// Longest watch.
pub const MAX_WATCH: Duration = Duration::from_secs(600);

/// How long step 4 watches.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    pub watch: Duration,
    /// Pushes later than this after their event are late.
    pub late: Duration,
    /// Show a progress line on stderr.
    pub progress: bool,
}

/// Doctor's temporary alarm server.
pub struct Listener {
    pub addr: SocketAddr,
    handle: ListenHandle,
    rx: Receiver<(Instant, Box<EventRecord>)>,
}

impl Listener {
    /// Bind `addr` and run the listener (no store, no faults; credentials when asked).
    pub fn start(addr: &str, a: &DoctorArgs) -> anyhow::Result<Listener> {
        let auth = match (a.listen_auth, &a.listen_user, &a.listen_password) {
            (Some(scheme), Some(user), Some(password)) => Some(crate::listen::auth::AuthConfig {
                scheme,
                user: user.clone(),
                password: password.clone(),
                realm: "alarmscope".into(),
            }),
            (Some(_), _, _) => {
                anyhow::bail!("--listen-auth needs --listen-user and --listen-password")
            }
            _ => None,
        };
        let opts = ListenOptions {
            bind: addr.to_string(),
            store: None,
            auth,
            faults: a.listen_fault.clone(),
            ..Default::default()
        };
        let (rx, handle) = crate::listen::spawn(opts, |u| match u {
            ListenUpdate::Event(e) => Some((Instant::now(), e)),
            _ => None,
        })?;
        Ok(Listener {
            addr: handle.local_addr,
            handle,
            rx,
        })
    }

    /// "ip:port" as printed; bound to every address, "THIS-IP:port" (a placeholder the next
    /// steps can use as written: any address of this machine the device reaches).
    pub fn display(&self) -> String {
        if self.addr.ip().is_unspecified() {
            format!("THIS-IP:{}", self.addr.port())
        } else {
            self.addr.to_string()
        }
    }

    /// Stop the listener.
    pub fn stop(self) {
        self.handle.join();
    }

    /// Run step 4: open the alertStream, ask the device to test `slot` (when known), watch, and
    /// compare.
    pub fn watch(
        &mut self,
        client: &mut IsapiClient,
        slot: Option<&HostSlot>,
        login: StreamLogin,
        o: &WatchOptions,
        unlinked: &[String],
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let t0 = Instant::now();
        let ms = |t: Instant| t.saturating_duration_since(t0).as_millis() as u64;
        let stop = Arc::new(AtomicBool::new(false));
        let (stx, srx) = std::sync::mpsc::channel();
        let open_wait = login.timeout.max(Duration::from_secs(2));
        let until = t0 + open_wait + o.watch + o.late + Duration::from_secs(1);
        if let Err(e) = spawn_stream(login, Some(until), stop.clone(), stx) {
            out.push(Finding::StreamUnavailable {
                detail: e.to_string(),
            });
            return out;
        }
        // Wait for the stream to open.
        let opened = loop {
            match srx.recv_timeout(open_wait) {
                Ok((_, StreamMsg::Connected)) => break Ok(()),
                Ok((_, StreamMsg::Unavailable(d))) => break Err(d),
                Ok((_, StreamMsg::Dropped(d))) if t0.elapsed() >= open_wait => break Err(d),
                Ok(_) => continue,
                Err(_) => break Err(format!("not open within {} s", open_wait.as_secs())),
            }
        };
        if let Err(detail) = opened {
            stop.store(true, Ordering::Relaxed);
            out.push(Finding::StreamUnavailable { detail });
            return out;
        }
        // Pushes before the watch (the probe's GET, earlier events) are not compared.
        while self.rx.try_recv().is_ok() {}
        let watch_start = Instant::now();
        let test = slot.map(|s| (s.id.clone(), ask_test(client, s), Instant::now()));
        let deadline = watch_start + o.watch;
        let push_deadline = deadline + o.late + Duration::from_millis(500);
        let mut generated: Vec<Seen> = Vec::new();
        let mut pushes: Vec<Pushed> = Vec::new();
        let mut keepalives = 0u64;
        let mut drops = 0u32;
        let mut gap_ms = 0u64;
        let mut down_since: Option<Instant> = None;
        let mut stream_ended = false;
        loop {
            let now = Instant::now();
            if now >= push_deadline {
                break;
            }
            while let Ok((at, rec)) = self.rx.try_recv() {
                if let Some(p) = pushed(&rec, ms(at)).filter(|_| pushes.len() < MAX_COMPARED) {
                    pushes.push(p);
                }
            }
            if now >= deadline || stream_ended {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            match srx.recv_timeout(Duration::from_millis(50)) {
                Ok((at, msg)) if at <= deadline => match msg {
                    StreamMsg::Item(StreamItem::Event { event, .. }) => {
                        if is_keepalive(&event) {
                            keepalives += 1;
                        } else if generated.len() < MAX_COMPARED {
                            generated.push(seen(&event, ms(at)));
                        }
                    }
                    StreamMsg::Item(_) | StreamMsg::Connected => {
                        if let Some(d) = down_since.take() {
                            gap_ms += ms(at).saturating_sub(ms(d));
                        }
                    }
                    StreamMsg::Dropped(_) => {
                        drops += 1;
                        down_since.get_or_insert(at);
                    }
                    StreamMsg::Unavailable(_) => {
                        drops += 1;
                        down_since.get_or_insert(at);
                        stream_ended = true;
                    }
                },
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stream_ended = true,
            }
            if o.progress {
                eprint!(
                    "\r  watching: {} generated, {} pushed, {} s left   ",
                    generated.len(),
                    pushes.len(),
                    deadline.saturating_duration_since(now).as_secs()
                );
            }
        }
        if o.progress {
            eprint!("\r{:60}\r", "");
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(d) = down_since {
            gap_ms += ms(deadline).saturating_sub(ms(d));
        }
        if let Some((id, result, at)) = test {
            // The test push is one that no generated event stands for, arriving around the call.
            let from = ms(at).saturating_sub(5_000);
            let arrived = unpaired_pushes(&generated, &pushes).into_iter().any(|i| {
                pushes
                    .get(i)
                    .is_some_and(|p| p.seen.at_ms >= from && p.seen.at_ms <= ms(at) + 5_000)
            });
            let test = match result {
                Ok(None) if arrived => TestResult::Arrived,
                Ok(None) => TestResult::ReportedOkNothingArrived,
                Ok(Some(error)) => TestResult::DeviceReportsFailure { error },
                Err(t) => t,
            };
            out.push(Finding::TestMessage { id, test });
        }
        if drops > 0 {
            out.push(Finding::StreamGaps { drops, gap_ms });
        }
        out.extend(compare(
            &generated,
            &pushes,
            o.late.as_millis() as u64,
            keepalives,
            o.watch.as_secs(),
            unlinked,
        ));
        out
    }
}

fn event_ref(ty: Option<&str>, ch: Option<&str>, dt: Option<&str>) -> EventRef {
    EventRef {
        event_type: ty.unwrap_or("?").to_string(),
        channel: ch.map(str::to_string),
        date_time: dt.map(str::to_string),
    }
}

fn seen(e: &EventInfo, at_ms: u64) -> Seen {
    Seen {
        event: event_ref(
            e.event_type.as_deref(),
            e.channel.as_deref(),
            e.date_time.as_deref(),
        ),
        state: e.event_state.clone(),
        at_ms,
    }
}

/// A push as compared: only requests that carried an event (the probe's GET carries none).
fn pushed(r: &EventRecord, at_ms: u64) -> Option<Pushed> {
    let ev = r.exchange.event.as_ref()?;
    ev.event_type.as_ref()?;
    if is_keepalive_type(ev.event_type.as_deref(), ev.event_state.as_deref()) {
        return None;
    }
    Some(Pushed {
        seen: Seen {
            event: event_ref(
                ev.event_type.as_deref(),
                ev.channel.as_deref(),
                ev.date_time.as_deref(),
            ),
            state: ev.event_state.clone(),
            at_ms,
        },
        status: r.exchange.response.as_ref().map_or(0, |x| x.status),
        auth: r.exchange.auth,
    })
}

/// POST the slot's test; Ok(None) when the device reports success, Ok(Some(error)) when it
/// reports a failure, Err when it has no test or the call failed.
fn ask_test(client: &mut IsapiClient, slot: &HostSlot) -> Result<Option<String>, TestResult> {
    const HOSTS: &str = "/ISAPI/Event/notification/httpHosts";
    let format = match fetch(client, ApiArg::Auto, HOSTS) {
        Ok((_, f, _)) => f,
        Err(e) => {
            return Err(TestResult::CallFailed {
                detail: e.to_string(),
            })
        }
    };
    let path = format!("{HOSTS}/{}/test", slot.id);
    let target = if format == ApiFormat::Json {
        with_json(&path)
    } else {
        path
    };
    let body = render_slot(slot, format);
    match client.request("POST", &target, Some((&body, format.content_type()))) {
        Ok(a) if a.is_success() => {
            let r = parse_test_result(&a.body).unwrap_or_default();
            Ok((!r.error.is_empty() && !r.error.eq_ignore_ascii_case("ok")).then_some(r.error))
        }
        Ok(a) if matches!(a.status, 404 | 405 | 500 | 501) => {
            Err(TestResult::NotOffered { status: a.status })
        }
        Ok(a) => Err(TestResult::CallFailed {
            detail: crate::device::client::classify(&target, &a).to_string(),
        }),
        Err(e) => Err(TestResult::CallFailed {
            detail: e.to_string(),
        }),
    }
}
