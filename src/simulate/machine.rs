//! Pure push logic of a simulated device: which event is due when, and the device-like reaction
//! to a server that does not answer `200 OK` (wait for the answer until a timeout, retry, and hold
//! every later event meanwhile). Time is an input in milliseconds since the run started; the
//! socket shell only executes the [`Step`]s and reports [`Outcome`]s.

use std::collections::BTreeMap;

use serde::Serialize;

use super::events::{BodyFormat, EventKind, KindArg};

/// The global event schedule: `count` posts (None = unlimited) spread over `devices` devices
/// round-robin at `rate` posts per second overall; each event is posted `repeat` times
/// (`activePostCount` 1..=repeat), as cameras re-send an active event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub count: Option<u64>,
    pub devices: u32,
    pub rate: f64,
    pub kind: KindArg,
    pub repeat: u32,
}

/// One planned post.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Planned {
    /// Global post number, 0-based.
    pub seq: u64,
    pub device: u32,
    /// When it is due, ms after the start.
    pub due_ms: u64,
    pub kind: EventKind,
    pub format: BodyFormat,
    pub active_post_count: u32,
}

impl Schedule {
    /// Post number `seq`, or None past the end.
    pub fn planned(&self, seq: u64) -> Option<Planned> {
        if self.count.is_some_and(|c| seq >= c) {
            return None;
        }
        let devices = u64::from(self.devices.max(1));
        let repeat = u64::from(self.repeat.max(1));
        let device = u32::try_from(seq % devices).unwrap_or(0);
        let nth = seq / devices; // this device's n-th post
        let (kind, format) = self.kind.pick(nth / repeat);
        let rate = if self.rate.is_finite() && self.rate > 0.0 {
            self.rate
        } else {
            1.0
        };
        let due_ms = ((seq as f64) * 1000.0 / rate).min(u64::MAX as f64 / 2.0) as u64;
        let active_post_count = u32::try_from(nth % repeat).unwrap_or(0).saturating_add(1);
        Some(Planned {
            seq,
            device,
            due_ms,
            kind,
            format,
            active_post_count,
        })
    }
}

/// How a device reacts to failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long to wait for the answer (and for the connection).
    pub timeout_ms: u64,
    /// Re-sends after the first failed attempt.
    pub retries: u32,
    /// Pause between a failed attempt and the re-send.
    pub retry_wait_ms: u64,
}

/// What happened to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The server answered with this status code.
    Answered(u16),
    /// No answer before the timeout.
    Timeout,
    /// The server closed or reset the connection without answering.
    Closed,
    /// The TCP connection could not be opened (refused, unreachable, connect timeout).
    ConnectFailed,
    /// Not sent: the event's trigger does not notify the surveillance center (`--serve-isapi`),
    /// so the device only shows it on its alertStream.
    NotLinked,
}

/// The next thing the shell must do for a device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Send this post (attempt 0 is the first send).
    Send { planned: Planned, attempt: u32 },
    /// Nothing to do before this time (ms since start).
    WaitUntil(u64),
    /// All this device's posts are resolved.
    Finished,
}

/// One attempt, as reported in `--json` lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub seq: u64,
    pub device: u32,
    pub event_type: &'static str,
    pub attempt: u32,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub started_ms: u64,
    pub elapsed_ms: u64,
    /// How late the first send of this post was against its schedule (held behind earlier ones).
    pub late_ms: u64,
    /// "delivered", "retrying", or "given_up".
    pub result: &'static str,
}

/// Totals over a run (added up over devices).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Posts taken from the schedule.
    pub events: u64,
    /// HTTP requests sent, retries included (connect failures excluded).
    pub sent: u64,
    /// Attempts answered 200.
    pub answered_200: u64,
    /// Other answers by status code.
    pub other_status: BTreeMap<u16, u64>,
    /// Attempts with no answer before the timeout.
    pub unanswered: u64,
    /// Attempts where the server closed the connection without an answer.
    pub closed_without_answer: u64,
    /// Attempts whose TCP connection failed.
    pub connect_failed: u64,
    /// Re-sends.
    pub retries: u64,
    /// Posts finally answered 200.
    pub delivered: u64,
    /// Posts abandoned after the last retry.
    pub given_up: u64,
    /// Posts that became due while an earlier one of the same device was still unresolved.
    pub held: u64,
    /// Sum over posts of the time from their first failed attempt to their resolution: how long
    /// devices were stuck and holding later events.
    pub stall_ms: u64,
    /// Largest lateness of a first send against the schedule.
    pub max_late_ms: u64,
    /// Events generated but never pushed because their trigger is not linked to the center.
    pub not_linked: u64,
}

impl Summary {
    /// Add another device's totals.
    pub fn merge(&mut self, o: &Summary) {
        self.events = self.events.saturating_add(o.events);
        self.sent = self.sent.saturating_add(o.sent);
        self.answered_200 = self.answered_200.saturating_add(o.answered_200);
        for (k, v) in &o.other_status {
            let e = self.other_status.entry(*k).or_default();
            *e = e.saturating_add(*v);
        }
        self.unanswered = self.unanswered.saturating_add(o.unanswered);
        self.closed_without_answer = self
            .closed_without_answer
            .saturating_add(o.closed_without_answer);
        self.connect_failed = self.connect_failed.saturating_add(o.connect_failed);
        self.retries = self.retries.saturating_add(o.retries);
        self.delivered = self.delivered.saturating_add(o.delivered);
        self.given_up = self.given_up.saturating_add(o.given_up);
        self.held = self.held.saturating_add(o.held);
        self.stall_ms = self.stall_ms.saturating_add(o.stall_ms);
        self.max_late_ms = self.max_late_ms.max(o.max_late_ms);
        self.not_linked = self.not_linked.saturating_add(o.not_linked);
    }

    /// Readable multi-line summary.
    pub fn render(&self) -> String {
        let others = if self.other_status.is_empty() {
            "none".to_string()
        } else {
            self.other_status
                .iter()
                .map(|(k, v)| format!("{k} x{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "events {}  sent {}  answered 200: {}  other statuses: {}\n\
             unanswered (timeout) {}  closed without answer {}  connect failed {}\n\
             retries {}  delivered {}  given up {}  held behind a stuck event {}\n\
             total stall {:.1} s  worst lateness {:.1} s  not linked to the center {}\n",
            self.events,
            self.sent,
            self.answered_200,
            others,
            self.unanswered,
            self.closed_without_answer,
            self.connect_failed,
            self.retries,
            self.delivered,
            self.given_up,
            self.held,
            self.stall_ms as f64 / 1000.0,
            self.max_late_ms as f64 / 1000.0,
            self.not_linked
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Current {
    planned: Planned,
    attempt: u32,
    retry_at: u64,
    failing_since: Option<u64>,
}

/// The push state machine of one simulated device. Posts go out strictly one at a time and in
/// order: while one is unanswered or being retried, later ones wait (are held).
#[derive(Debug, Clone)]
pub struct DeviceMachine {
    schedule: Schedule,
    timing: Timing,
    device: u32,
    /// This device's next post number (n-th of the device).
    next_nth: u64,
    current: Option<Current>,
    last_resolved_ms: u64,
    stats: Summary,
}

impl DeviceMachine {
    /// Machine for device `device` of `schedule`.
    pub fn new(schedule: Schedule, timing: Timing, device: u32) -> Self {
        DeviceMachine {
            schedule,
            timing,
            device,
            next_nth: 0,
            current: None,
            last_resolved_ms: 0,
            stats: Summary::default(),
        }
    }

    /// This device's totals so far.
    pub fn summary(&self) -> &Summary {
        &self.stats
    }

    /// The timing in force.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// What to do at `now_ms`.
    pub fn next(&mut self, now_ms: u64) -> Step {
        if let Some(c) = self.current {
            if now_ms < c.retry_at {
                return Step::WaitUntil(c.retry_at);
            }
            return Step::Send {
                planned: c.planned,
                attempt: c.attempt,
            };
        }
        let seq = self
            .next_nth
            .saturating_mul(u64::from(self.schedule.devices.max(1)))
            .saturating_add(u64::from(self.device));
        let Some(planned) = self.schedule.planned(seq) else {
            return Step::Finished;
        };
        if now_ms < planned.due_ms {
            return Step::WaitUntil(planned.due_ms);
        }
        self.next_nth = self.next_nth.saturating_add(1);
        self.stats.events = self.stats.events.saturating_add(1);
        if self.last_resolved_ms > planned.due_ms {
            self.stats.held = self.stats.held.saturating_add(1);
        }
        self.stats.max_late_ms = self
            .stats
            .max_late_ms
            .max(now_ms.saturating_sub(planned.due_ms));
        self.current = Some(Current {
            planned,
            attempt: 0,
            retry_at: 0,
            failing_since: None,
        });
        Step::Send {
            planned,
            attempt: 0,
        }
    }

    /// Give the post in progress the event kind its trigger decided (`--serve-isapi` picks the
    /// event from the device's triggers, not from `--kind`).
    pub fn retag(&mut self, kind: EventKind) {
        if let Some(c) = &mut self.current {
            c.planned.kind = kind;
        }
    }

    /// Report the outcome of the attempt returned by the last [`next`](Self::next), which ran
    /// from `started_ms` to `ended_ms`.
    pub fn record(
        &mut self,
        started_ms: u64,
        ended_ms: u64,
        outcome: Outcome,
    ) -> Option<AttemptRecord> {
        let mut c = self.current?;
        let s = &mut self.stats;
        if outcome == Outcome::NotLinked {
            // Nothing was sent, nothing waited: the next event is not held by this one.
            s.not_linked = s.not_linked.saturating_add(1);
            self.current = None;
            return Some(AttemptRecord {
                seq: c.planned.seq,
                device: c.planned.device,
                event_type: c.planned.kind.event_type(),
                attempt: 0,
                outcome,
                started_ms,
                elapsed_ms: 0,
                late_ms: 0,
                result: "not_linked",
            });
        }
        if outcome != Outcome::ConnectFailed {
            s.sent = s.sent.saturating_add(1);
        }
        if c.attempt > 0 {
            s.retries = s.retries.saturating_add(1);
        }
        match outcome {
            Outcome::Answered(200) => s.answered_200 = s.answered_200.saturating_add(1),
            Outcome::Answered(code) => {
                let e = s.other_status.entry(code).or_default();
                *e = e.saturating_add(1);
            }
            Outcome::Timeout => s.unanswered = s.unanswered.saturating_add(1),
            Outcome::Closed => s.closed_without_answer = s.closed_without_answer.saturating_add(1),
            Outcome::ConnectFailed => s.connect_failed = s.connect_failed.saturating_add(1),
            Outcome::NotLinked => {}
        }
        let late_ms = 0;
        let result = if outcome == Outcome::Answered(200) {
            if let Some(f) = c.failing_since {
                s.stall_ms = s.stall_ms.saturating_add(ended_ms.saturating_sub(f));
            }
            s.delivered = s.delivered.saturating_add(1);
            self.current = None;
            self.last_resolved_ms = ended_ms;
            "delivered"
        } else {
            let since = *c.failing_since.get_or_insert(started_ms);
            if c.attempt < self.timing.retries {
                c.attempt = c.attempt.saturating_add(1);
                c.retry_at = ended_ms.saturating_add(self.timing.retry_wait_ms);
                self.current = Some(c);
                "retrying"
            } else {
                s.stall_ms = s.stall_ms.saturating_add(ended_ms.saturating_sub(since));
                s.given_up = s.given_up.saturating_add(1);
                self.current = None;
                self.last_resolved_ms = ended_ms;
                "given_up"
            }
        };
        let attempt = if result == "retrying" {
            c.attempt.saturating_sub(1)
        } else {
            c.attempt
        };
        Some(AttemptRecord {
            seq: c.planned.seq,
            device: c.planned.device,
            event_type: c.planned.kind.event_type(),
            attempt,
            outcome,
            started_ms,
            elapsed_ms: ended_ms.saturating_sub(started_ms),
            late_ms: if attempt == 0 {
                started_ms.saturating_sub(c.planned.due_ms)
            } else {
                late_ms
            },
            result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(count: u64, devices: u32, rate: f64) -> Schedule {
        Schedule {
            count: Some(count),
            devices,
            rate,
            kind: KindArg::Xml,
            repeat: 1,
        }
    }

    #[test]
    fn schedule_round_robin_and_rate() {
        let s = sched(5, 2, 4.0);
        let p: Vec<(u32, u64)> = (0..6)
            .filter_map(|i| s.planned(i))
            .map(|p| (p.device, p.due_ms))
            .collect();
        assert_eq!(p, vec![(0, 0), (1, 250), (0, 500), (1, 750), (0, 1000)]);
        // Device 1's posts: n-th = 0, 1 -> Vmd, linedetection.
        assert_eq!(s.planned(3).unwrap().kind, EventKind::LineDetection);
        let unlimited = Schedule { count: None, ..s };
        assert!(unlimited.planned(1_000_000).is_some());
    }

    #[test]
    fn schedule_repeats_count_active_posts() {
        let s = Schedule {
            count: Some(6),
            devices: 1,
            rate: 1.0,
            kind: KindArg::Xml,
            repeat: 3,
        };
        let v: Vec<(EventKind, u32)> = (0..6)
            .map(|i| s.planned(i).unwrap())
            .map(|p| (p.kind, p.active_post_count))
            .collect();
        assert_eq!(
            v,
            vec![
                (EventKind::Vmd, 1),
                (EventKind::Vmd, 2),
                (EventKind::Vmd, 3),
                (EventKind::LineDetection, 1),
                (EventKind::LineDetection, 2),
                (EventKind::LineDetection, 3)
            ]
        );
    }

    /// Drive a machine against a scripted server: `answer(seq, attempt)` gives the outcome and
    /// how long the attempt takes.
    fn drive(
        m: &mut DeviceMachine,
        answer: impl Fn(u64, u32) -> (Outcome, u64),
    ) -> (Vec<AttemptRecord>, u64) {
        let mut now = 0u64;
        let mut recs = Vec::new();
        for _ in 0..1000 {
            match m.next(now) {
                Step::Finished => return (recs, now),
                Step::WaitUntil(t) => {
                    assert!(t > now);
                    now = t;
                }
                Step::Send { planned, attempt } => {
                    let (o, took) = answer(planned.seq, attempt);
                    let start = now;
                    now += took;
                    recs.push(m.record(start, now, o).unwrap());
                }
            }
        }
        panic!("did not finish");
    }

    #[test]
    fn all_ok_no_stall() {
        let mut m = DeviceMachine::new(
            sched(3, 1, 1.0),
            Timing {
                timeout_ms: 5000,
                retries: 1,
                retry_wait_ms: 1000,
            },
            0,
        );
        let (recs, end) = drive(&mut m, |_, _| (Outcome::Answered(200), 20));
        assert_eq!(recs.len(), 3);
        assert_eq!(end, 2020);
        let s = m.summary();
        assert_eq!(
            (
                s.events,
                s.sent,
                s.answered_200,
                s.delivered,
                s.retries,
                s.stall_ms,
                s.held
            ),
            (3, 3, 3, 3, 0, 0, 0)
        );
    }

    #[test]
    fn not_linked_events_are_resolved_without_sending() {
        let t = Timing {
            timeout_ms: 5000,
            retries: 2,
            retry_wait_ms: 1000,
        };
        let mut m = DeviceMachine::new(sched(4, 1, 1.0), t, 0);
        // Every other event is not linked; the linked ones are answered at once.
        let (recs, _) = drive(&mut m, |seq, _| {
            if seq % 2 == 1 {
                (Outcome::NotLinked, 0)
            } else {
                (Outcome::Answered(200), 10)
            }
        });
        assert_eq!(recs.len(), 4, "no retries of an unlinked event");
        assert_eq!(recs[1].result, "not_linked");
        let s = m.summary();
        assert_eq!(
            (
                s.events,
                s.sent,
                s.delivered,
                s.not_linked,
                s.held,
                s.given_up
            ),
            (4, 2, 2, 2, 0, 0)
        );
    }

    #[test]
    fn server_never_answers_stalls_and_holds() {
        // 3 posts at 1/s, timeout 5 s, one retry after 1 s: each post takes 5 + 1 + 5 = 11 s.
        let t = Timing {
            timeout_ms: 5000,
            retries: 1,
            retry_wait_ms: 1000,
        };
        let mut m = DeviceMachine::new(sched(3, 1, 1.0), t, 0);
        let (recs, end) = drive(&mut m, |_, _| (Outcome::Timeout, 5000));
        assert_eq!(recs.len(), 6);
        assert_eq!(end, 33_000);
        let s = m.summary();
        assert_eq!(s.sent, 6);
        assert_eq!(s.unanswered, 6);
        assert_eq!(s.retries, 3);
        assert_eq!(s.given_up, 3);
        assert_eq!(s.delivered, 0);
        assert_eq!(s.stall_ms, 33_000);
        // Posts 1 and 2 were due at 1 s and 2 s but post 0 was stuck until 11 s.
        assert_eq!(s.held, 2);
        // Post 2 first went out at 22 s, due at 2 s.
        assert_eq!(s.max_late_ms, 20_000);
        assert_eq!(recs[0].result, "retrying");
        assert_eq!(recs[1].result, "given_up");
        assert_eq!((recs[1].attempt, recs[1].started_ms), (1, 6000));
        assert_eq!((recs[4].seq, recs[4].late_ms), (2, 20_000));
    }

    #[test]
    fn first_attempt_fails_then_ok() {
        let t = Timing {
            timeout_ms: 2000,
            retries: 2,
            retry_wait_ms: 500,
        };
        let mut m = DeviceMachine::new(sched(2, 1, 10.0), t, 0);
        // Post 0: 503 (10 ms), then 200 (10 ms). Post 1: 200.
        let (recs, _) = drive(&mut m, |seq, a| {
            if seq == 0 && a == 0 {
                (Outcome::Answered(503), 10)
            } else {
                (Outcome::Answered(200), 10)
            }
        });
        let s = m.summary();
        assert_eq!(s.other_status.get(&503), Some(&1));
        assert_eq!(
            (s.sent, s.answered_200, s.retries, s.delivered, s.given_up),
            (3, 2, 1, 2, 0)
        );
        // Stall: from 0 (start of the failed attempt) to 520 (end of the retry).
        assert_eq!(s.stall_ms, 520);
        assert_eq!(s.held, 1); // post 1 due at 100 ms
        assert_eq!(recs[2].late_ms, 420);
    }

    #[test]
    fn connect_failures_are_not_sent_requests() {
        let t = Timing {
            timeout_ms: 1000,
            retries: 0,
            retry_wait_ms: 0,
        };
        let mut m = DeviceMachine::new(sched(2, 1, 1.0), t, 0);
        drive(&mut m, |_, _| (Outcome::ConnectFailed, 1));
        let s = m.summary();
        assert_eq!(
            (s.sent, s.connect_failed, s.given_up, s.retries, s.stall_ms),
            (0, 2, 2, 0, 2)
        );
    }

    #[test]
    fn devices_take_their_own_posts() {
        let s = sched(5, 2, 1.0);
        let t = Timing {
            timeout_ms: 1000,
            retries: 0,
            retry_wait_ms: 0,
        };
        let mut a = DeviceMachine::new(s, t, 0);
        let mut b = DeviceMachine::new(s, t, 1);
        let (ra, _) = drive(&mut a, |_, _| (Outcome::Answered(200), 1));
        let (rb, _) = drive(&mut b, |_, _| (Outcome::Answered(200), 1));
        assert_eq!(ra.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 2, 4]);
        assert_eq!(rb.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 3]);
        let mut total = a.summary().clone();
        total.merge(b.summary());
        assert_eq!((total.events, total.delivered), (5, 5));
    }

    #[test]
    fn record_without_send_is_ignored() {
        let mut m = DeviceMachine::new(
            sched(1, 1, 1.0),
            Timing {
                timeout_ms: 1,
                retries: 0,
                retry_wait_ms: 0,
            },
            0,
        );
        assert_eq!(m.record(0, 1, Outcome::Timeout), None);
        assert_eq!(m.summary(), &Summary::default());
    }
}
