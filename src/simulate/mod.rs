//! `alarmscope simulate`: behave like one or more devices pushing events to an alarm server, with
//! the device-like reaction to missing `200 OK` answers (timeout, retry, later events held), and
//! optionally the device's ISAPI configuration side (`--serve-isapi`).
//!
//! Event bodies ([`events`]) and the retry/hold state machine ([`machine`]) are pure; [`push`]
//! and [`isapi`] are the socket shells.

pub mod events;
pub mod isapi;
pub mod machine;
pub mod picture_fault;
pub mod push;
pub mod triggers;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::time::Instant;

use crate::device::hosts::{ApiFormat, HostSlot};
use crate::time::Timestamp;
use events::{
    build_push, request_bytes_auth, BodyFormat, DeviceIdentity, EventKind, EventSpec, KindArg,
};
use machine::{AttemptRecord, DeviceMachine, Outcome, Schedule, Step, Summary, Timing};
use push::{
    attempt_auth, local_ip_towards, source_for, PushAuth, PushUrl, PushUrlError, TlsClient,
    TlsVersion, Transport, Trust,
};
use triggers::{trigger_table, Trigger};

/// `--isapi-format`: what the simulated device's configuration API speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsapiFormatArg {
    /// A camera: XML.
    Xml,
    /// An access terminal: JSON only (`?format=json`).
    Json,
}

/// `--host-protocol`: alarm host slot 1's `protocolType` at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostProtocolArg {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

/// `--host-format`: alarm host slot 1's `parameterFormatType` at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostFormatArg {
    /// `EventNotificationAlert` XML.
    Xml,
    /// The same event as JSON.
    Json,
}

/// `--host-auth`: alarm host slot 1's `httpAuthenticationMethod` at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostAuthArg {
    /// `none`.
    None,
    /// `basic`.
    Basic,
    /// `MD5digest`.
    Digest,
}

/// `alarmscope simulate` options.
#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// Push to this alarm server URL, e.g. http://127.0.0.1:8080/alarm, or https://... (then
    /// --insecure or --ca is required). With --serve-isapi it is the initial host slot 1 and may
    /// be left out (then pushes start once a host is configured).
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// HTTPS pushes: accept any server certificate, as many devices do.
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,
    /// HTTPS pushes: trust only server certificates issued by the certificates in FILE (PEM),
    /// e.g. the listener's STORE/tls/cert.pem.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// HTTPS pushes: offer only this TLS version (many cameras only do 1.2); default both.
    #[arg(long, value_enum, value_name = "1.2|1.3")]
    pub tls_version: Option<TlsVersion>,
    /// Number of simulated devices (distinct MACs and ids; distinct 127.0.0.x sources on loopback).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub devices: u32,
    /// Total number of posts (retries not counted). Default 10, or unlimited with --serve-isapi.
    #[arg(long)]
    pub count: Option<u64>,
    /// Posts per second over all devices.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// What to send (default mixed; with --serve-isapi and no --kind, the device's enabled
    /// triggers take turns).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Send each event this many times (activePostCount 1..N), as cameras repeat an active event.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Seconds to wait for the server's answer before giving up on an attempt.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Re-sends of a post that was not answered 200 OK.
    #[arg(long, default_value_t = 1)]
    pub retries: u32,
    /// Seconds to wait before a re-send.
    #[arg(long, default_value_t = 1.0)]
    pub retry_wait: f64,
    /// Add the odd bodies seen in the field (no XML declaration, raw &, empty elements, text/plain).
    #[arg(long)]
    pub quirks: bool,
    /// Send the first picture of every multipart event broken: `cut` (5/8 of it, its
    /// Content-Length still the whole size) or `corrupt` (its frame header overwritten).
    #[arg(long, value_enum, value_name = "FAULT")]
    pub picture_fault: Option<picture_fault::PictureFault>,
    /// One JSON line per attempt, then one summary line.
    #[arg(long)]
    pub json: bool,
    /// Also answer the device's ISAPI httpHosts calls on ADDR (e.g. 127.0.0.1:8000; port 0 picks
    /// one, printed on stderr) with digest authentication.
    #[arg(long, value_name = "ADDR")]
    pub serve_isapi: Option<String>,
    /// ISAPI user name of the simulated device.
    #[arg(long, default_value = "admin")]
    pub isapi_user: String,
    /// ISAPI password of the simulated device.
    #[arg(
        long,
        env = "ALARMSCOPE_SIM_PASSWORD",
        default_value = "admin12345",
        hide_env_values = true
    )]
    pub isapi_password: String,
    /// Whether the simulated device's ISAPI speaks XML (camera) or JSON (access terminal).
    #[arg(long, value_enum, default_value_t = IsapiFormatArg::Xml)]
    pub isapi_format: IsapiFormatArg,
    /// With --serve-isapi: the event types the device has enabled, each with a trigger per
    /// channel (VMD, linedetection, fielddetection).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "VMD,linedetection,fielddetection"
    )]
    pub events: Vec<String>,
    /// With --serve-isapi: event types whose triggers do not notify the surveillance center. The
    /// device still generates them (they appear on its alertStream) but never pushes them.
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub unlinked: Vec<String>,
    /// With --serve-isapi: video channels (one trigger per event type and channel).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub channels: u32,
    /// Each device generates one event every SECS (the same as --rate DEVICES/SECS).
    #[arg(long, value_name = "SECS")]
    pub generate_every: Option<f64>,
    /// With --serve-isapi: seconds between the videoloss/inactive keep-alives on the alertStream.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub heartbeat: f64,
    /// With --serve-isapi: close each alertStream after SECS, as devices drop long streams (the
    /// client must reconnect).
    #[arg(long, value_name = "SECS")]
    pub stream_drop_after: Option<f64>,
    /// With --serve-isapi: answer 403 (lowPrivilege) to the configuration calls (httpHosts,
    /// triggers), as recorders do for an operator account.
    #[arg(long)]
    pub forbid_config: bool,
    /// With --serve-isapi: alarm host slot 1's protocolType at start (HTTPS pushes go over TLS,
    /// trusting --ca if given, else any server certificate). An https:// --to sets HTTPS.
    #[arg(long, value_enum)]
    pub host_protocol: Option<HostProtocolArg>,
    /// With --serve-isapi: alarm host slot 1's parameterFormatType at start.
    #[arg(long, value_enum)]
    pub host_format: Option<HostFormatArg>,
    /// With --serve-isapi: alarm host slot 1's httpAuthenticationMethod at start.
    #[arg(long, value_enum)]
    pub host_auth: Option<HostAuthArg>,
    /// With --serve-isapi: alarm host slot 1's userName at start.
    #[arg(long)]
    pub host_user: Option<String>,
    /// With --serve-isapi: alarm host slot 1's password at start.
    #[arg(long, env = "ALARMSCOPE_SIM_HOST_PASSWORD", hide_env_values = true)]
    pub host_password: Option<String>,
}

fn secs_ms(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1000.0).min(86_400_000.0) as u64
    } else {
        0
    }
}

/// Where the devices push: fixed, or whatever the ISAPI side has configured.
#[derive(Clone)]
enum Target {
    Fixed(PushUrl),
    Isapi(Arc<isapi::IsapiDevice>),
}

fn slot_url(slot: &HostSlot) -> Result<PushUrl, PushUrlError> {
    let port: u16 = slot
        .port
        .parse()
        .map_err(|_| PushUrlError::BadPort(slot.port.clone()))?;
    let path = if slot.url.starts_with('/') {
        slot.url.clone()
    } else {
        format!("/{}", slot.url)
    };
    Ok(PushUrl {
        host: slot.address().to_string(),
        port,
        path,
        https: slot.protocol.eq_ignore_ascii_case("HTTPS"),
    })
}

/// Where and how the next push goes.
struct Route {
    url: Result<PushUrl, PushUrlError>,
    /// The slot's body format for camera events (None: the schedule's).
    format: Option<BodyFormat>,
    auth: PushAuth,
    tls: bool,
}

/// The transport a slot asks for: TLS presenting the slot's address when it says HTTPS.
fn transport(tls: bool, url: &PushUrl, client: &TlsClient) -> Transport {
    if tls {
        Transport::Tls {
            server_name: url.host.clone(),
            client: client.clone(),
        }
    } else {
        Transport::Plain
    }
}

impl Target {
    fn current(&self) -> Option<Route> {
        match self {
            Target::Fixed(u) => Some(Route {
                url: Ok(u.clone()),
                format: None,
                auth: PushAuth::None,
                tls: u.https,
            }),
            Target::Isapi(dev) => {
                let slot = dev.active_host()?;
                let fmt = if slot.format.eq_ignore_ascii_case("JSON") {
                    BodyFormat::Json
                } else {
                    BodyFormat::Xml
                };
                Some(Route {
                    url: slot_url(&slot),
                    format: Some(fmt),
                    auth: PushAuth::from_slot(
                        &slot.auth,
                        &slot.user_name,
                        &dev.slot_password(&slot.id),
                    ),
                    tls: slot.protocol.eq_ignore_ascii_case("HTTPS"),
                })
            }
        }
    }
}

/// What the device decided for one generated event: which trigger fired and whether it is
/// pushed. Made once per event, shared by the stream publisher and the pusher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decision {
    kind: EventKind,
    channel: Option<u32>,
    linked: bool,
}

/// The decisions of one device, by post number (bounded: old ones are dropped).
type Decisions = Arc<Mutex<std::collections::BTreeMap<u64, Decision>>>;

fn is_camera(k: EventKind) -> bool {
    matches!(
        k,
        EventKind::Vmd
            | EventKind::LineDetection
            | EventKind::FieldDetection
            | EventKind::PeopleCounting
    )
}

/// Decide event `seq` (the device's `nth`) from the triggers: with `trigger_driven` the enabled
/// triggers take turns; otherwise the planned kind fires its channel-1 trigger if it has one.
fn decide(
    memo: &Decisions,
    triggers: &[Trigger],
    trigger_driven: bool,
    seq: u64,
    nth: u64,
    planned: EventKind,
) -> Decision {
    let Ok(mut m) = memo.lock() else {
        return Decision {
            kind: planned,
            channel: None,
            linked: true,
        };
    };
    if let Some(d) = m.get(&seq) {
        return *d;
    }
    let usable: Vec<&Trigger> = triggers.iter().filter(|t| t.kind().is_some()).collect();
    let d = if trigger_driven && !usable.is_empty() {
        let t = usable
            .get((nth % usable.len() as u64) as usize)
            .copied()
            .or(usable.first().copied());
        match t {
            Some(t) => Decision {
                kind: t.kind().unwrap_or(planned),
                channel: Some(t.channel),
                linked: t.center,
            },
            None => Decision {
                kind: planned,
                channel: None,
                linked: true,
            },
        }
    } else {
        let t = usable
            .iter()
            .find(|t| t.kind() == Some(planned) && t.channel == 1);
        Decision {
            kind: planned,
            channel: t.map(|t| t.channel),
            linked: t.is_none_or(|t| t.center),
        }
    };
    m.insert(seq, d);
    let keep = seq.saturating_sub(4096);
    while m.first_key_value().is_some_and(|(k, _)| *k < keep) {
        m.pop_first();
    }
    d
}

async fn resolve(url: &PushUrl) -> Option<SocketAddr> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, url.port));
    }
    tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .ok()?
        .next()
}

/// The TLS side of the simulated devices. An `https://` `--to` needs a decision on trust:
/// `--insecure` (any certificate) or `--ca FILE`, refused otherwise rather than guessed, since
/// the point is to see what a device configured that way meets. A slot set to HTTPS over ISAPI
/// keeps the device-like default (any certificate) unless `--ca` is given.
fn tls_client(a: &SimulateArgs, fixed: Option<&PushUrl>) -> anyhow::Result<TlsClient> {
    let trust = match (&a.ca, a.insecure) {
        (Some(ca), _) => Trust::from_ca_file(ca).map_err(|e| anyhow::anyhow!("--ca: {e}"))?,
        (None, true) => Trust::AnyCertificate,
        (None, false) if fixed.is_some_and(|u| u.https) && a.serve_isapi.is_none() => {
            anyhow::bail!(
                "--to https://... needs a decision on the server's certificate: --insecure (accept any, as many devices do) or --ca FILE (trust only certificates issued by FILE, e.g. the listener's STORE/tls/cert.pem)"
            )
        }
        (None, false) => Trust::AnyCertificate,
    };
    TlsClient::new(trust, a.tls_version).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Apply the `--host-*` options to alarm host slot 1.
fn configure_slot(s: &mut HostSlot, a: &SimulateArgs) {
    if let Some(p) = a.host_protocol {
        s.protocol = match p {
            HostProtocolArg::Http => "HTTP",
            HostProtocolArg::Https => "HTTPS",
        }
        .into();
    }
    if let Some(f) = a.host_format {
        s.format = match f {
            HostFormatArg::Xml => "XML",
            HostFormatArg::Json => "JSON",
        }
        .into();
    }
    if let Some(m) = a.host_auth {
        s.auth = match m {
            HostAuthArg::None => "none",
            HostAuthArg::Basic => "basic",
            HostAuthArg::Digest => "MD5digest",
        }
        .into();
    }
    if let Some(u) = &a.host_user {
        s.user_name = u.clone();
    }
}

/// Output of the run: attempt records and warnings, printed by the caller's sink.
pub enum Report<'a> {
    Attempt(&'a AttemptRecord, &'a str),
    Warning(String),
}

type Sink = Arc<dyn Fn(Report<'_>) + Send + Sync>;

/// The device side shared by a device's pusher and its event generator (`--serve-isapi`).
#[derive(Clone)]
struct DeviceSide {
    dev: Arc<isapi::IsapiDevice>,
    memo: Decisions,
    /// No `--kind`: the triggers choose the events.
    trigger_driven: bool,
    /// Wall clock at the schedule's start: an event's `dateTime` is when it was due, however
    /// late its push.
    start_wall: Timestamp,
}

impl DeviceSide {
    fn decide(&self, schedule: &Schedule, p: &machine::Planned) -> Decision {
        // The device's n-th distinct event: the repeats of one event share its trigger.
        let nth = p.seq / u64::from(schedule.devices.max(1)) / u64::from(schedule.repeat.max(1));
        decide(
            &self.memo,
            &self.dev.triggers(),
            self.trigger_driven,
            p.seq,
            nth,
            p.kind,
        )
    }

    fn event_time(&self, due_ms: u64) -> Timestamp {
        Timestamp(
            self.start_wall
                .0
                .saturating_add(i64::try_from(due_ms).unwrap_or(i64::MAX / 2) * 1_000_000),
        )
    }
}

/// Everything one device task needs.
struct DeviceRun {
    index: u32,
    schedule: Schedule,
    timing: Timing,
    quirks: bool,
    picture_fault: Option<picture_fault::PictureFault>,
    target: Target,
    side: Option<DeviceSide>,
    totals: Arc<Mutex<Summary>>,
    sink: Sink,
    start: Instant,
    tls_client: TlsClient,
}

/// `--serve-isapi`: put every event of device `index` on the alertStream when it happens,
/// pushed or not, as the device's own event stream shows them.
async fn generate_events(index: u32, schedule: Schedule, side: DeviceSide, start: Instant) {
    let devices = u64::from(schedule.devices.max(1));
    let mut nth = 0u64;
    loop {
        let seq = nth.saturating_mul(devices).saturating_add(u64::from(index));
        let Some(p) = schedule.planned(seq) else {
            return;
        };
        tokio::time::sleep_until(start + Duration::from_millis(p.due_ms)).await;
        let d = side.decide(&schedule, &p);
        // The address the device reports is the one its pushes carry (towards the slot's host).
        let ip = side
            .dev
            .active_host()
            .and_then(|h| h.address().parse::<IpAddr>().ok())
            .and_then(|ip| {
                source_for(ip, index).or_else(|| local_ip_towards(SocketAddr::new(ip, 80)))
            })
            .unwrap_or(side.dev.identity.ip);
        let id = DeviceIdentity::new(index, ip);
        if is_camera(d.kind) {
            // A JSON device (access terminal) streams JSON parts, a camera XML ones.
            let (format, content_type) = match side.dev.api {
                ApiFormat::Json => (BodyFormat::Json, "application/json; charset=\"UTF-8\""),
                ApiFormat::Xml => (BodyFormat::Xml, "application/xml; charset=\"UTF-8\""),
            };
            let spec = EventSpec {
                kind: d.kind,
                format,
                seq: p.seq,
                active_post_count: p.active_post_count,
                quirks: false,
                channel: d.channel,
            };
            let push = build_push(&id, &spec, side.event_time(p.due_ms));
            side.dev.publish(content_type, push.body);
        }
        nth = nth.saturating_add(1);
    }
}

async fn run_device(r: DeviceRun) {
    let DeviceRun {
        index,
        schedule,
        timing,
        quirks,
        picture_fault,
        target,
        side,
        totals,
        sink,
        start,
        tls_client,
    } = r;
    let mut m = DeviceMachine::new(schedule, timing, index);
    let mut warned = false;
    // The body of the post in progress: a retry re-sends the same body, as devices do.
    let mut cached: Option<(u64, events::Push)> = None;
    loop {
        let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        match m.next(now_ms) {
            Step::Finished => break,
            Step::WaitUntil(t) => {
                tokio::time::sleep_until(start + Duration::from_millis(t)).await;
            }
            Step::Send {
                mut planned,
                attempt: _,
            } => {
                let begun = Instant::now();
                let started_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                let decision = side.as_ref().map(|s| s.decide(&schedule, &planned));
                if let Some(d) = decision {
                    planned.kind = d.kind;
                    m.retag(d.kind);
                }
                let route = if decision.is_some_and(|d| !d.linked) {
                    None
                } else {
                    target.current()
                };
                let (outcome, to) = match route {
                    None if decision.is_some_and(|d| !d.linked) => {
                        (Outcome::NotLinked, String::new())
                    }
                    None => (Outcome::ConnectFailed, "(no host configured)".to_string()),
                    Some(Route { url: Err(e), .. }) => {
                        if !warned {
                            sink(Report::Warning(format!("device {index}: {e}")));
                            warned = true;
                        }
                        (Outcome::ConnectFailed, String::new())
                    }
                    Some(Route {
                        url: Ok(url),
                        format: fmt,
                        auth,
                        tls,
                    }) => match resolve(&url).await {
                        None => {
                            if !warned {
                                sink(Report::Warning(format!(
                                    "device {index}: cannot resolve {}",
                                    url.host
                                )));
                                warned = true;
                            }
                            (Outcome::ConnectFailed, url.host_header())
                        }
                        Some(addr) => {
                            let source = source_for(addr.ip(), index);
                            let reported = source
                                .or_else(|| local_ip_towards(addr))
                                .unwrap_or(addr.ip());
                            let id = DeviceIdentity::new(index, reported);
                            let format = match (planned.kind, fmt) {
                                (k, Some(f)) if is_camera(k) => f,
                                _ => planned.format,
                            };
                            let spec = EventSpec {
                                kind: planned.kind,
                                format,
                                seq: planned.seq,
                                active_post_count: planned.active_post_count,
                                quirks,
                                channel: decision.and_then(|d| d.channel),
                            };
                            let at = match &side {
                                Some(s) => s.event_time(planned.due_ms),
                                None => Timestamp::now(),
                            };
                            let p = match cached.take() {
                                Some((seq, p)) if seq == planned.seq => p,
                                _ => {
                                    let p = build_push(&id, &spec, at);
                                    match picture_fault {
                                        Some(f) => f.apply(p),
                                        None => p,
                                    }
                                }
                            };
                            let sent_at = Timestamp::now();
                            let host = url.host_header();
                            let build = |a: Option<&str>| {
                                request_bytes_auth(&host, &url.path, &p, sent_at, a)
                            };
                            let o = attempt_auth(
                                addr,
                                source,
                                &transport(tls, &url, &tls_client),
                                &url.path,
                                &build,
                                &auth,
                                Duration::from_millis(timing.timeout_ms),
                            )
                            .await;
                            cached = Some((planned.seq, p));
                            let scheme = if tls { "https" } else { "http" };
                            (o, format!("{scheme}://{}{}", url.host_header(), url.path))
                        }
                    },
                };
                // Keep the attempt's real duration (connect failures can be instant).
                let ended_ms = started_ms
                    .saturating_add(u64::try_from(begun.elapsed().as_millis()).unwrap_or(0));
                if let Some(rec) = m.record(started_ms, ended_ms, outcome) {
                    sink(Report::Attempt(&rec, &to));
                }
                if let Ok(mut t) = totals.lock() {
                    *t = m.summary().clone();
                }
            }
        }
    }
}

fn print_line(out: &mut impl Write, json: bool, r: Report<'_>) {
    match r {
        Report::Attempt(rec, to) => {
            if json {
                let mut v = serde_json::to_value(rec).unwrap_or_default();
                v["type"] = "attempt".into();
                v["to"] = to.into();
                let _ = writeln!(out, "{v}");
            } else {
                let what = match rec.outcome {
                    Outcome::Answered(c) => format!("answered {c}"),
                    Outcome::Timeout => "no answer (timeout)".into(),
                    Outcome::Closed => "closed without answer".into(),
                    Outcome::ConnectFailed => "connect failed".into(),
                    Outcome::NotLinked => "not pushed (not linked to the center)".into(),
                };
                let retry = if rec.attempt > 0 {
                    format!(" retry {}", rec.attempt)
                } else {
                    String::new()
                };
                let late = if rec.late_ms > 0 {
                    format!(", {:.1} s late", rec.late_ms as f64 / 1000.0)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "{:>8.3}s device {} #{} {}{retry}: {what} in {} ms{late} -> {}",
                    rec.started_ms as f64 / 1000.0,
                    rec.device,
                    rec.seq,
                    rec.event_type,
                    rec.elapsed_ms,
                    rec.result
                );
            }
        }
        Report::Warning(w) => {
            if json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({"type": "warning", "message": w})
                );
            } else {
                eprintln!("alarmscope: {w}");
            }
        }
    }
    let _ = out.flush();
}

/// Run `alarmscope simulate`. Returns the process exit code.
pub fn run(a: SimulateArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(a))
}

async fn run_async(a: SimulateArgs) -> anyhow::Result<i32> {
    let fixed = match &a.to {
        Some(u) => Some(PushUrl::parse(u).map_err(|e| anyhow::anyhow!("--to: {e}"))?),
        None => None,
    };
    if fixed.is_none() && a.serve_isapi.is_none() {
        anyhow::bail!(
            "give --to URL, or --serve-isapi ADDR to be configured with `alarmscope device set`"
        );
    }
    let tls_client = tls_client(&a, fixed.as_ref())?;
    let count = a.count.or(if a.serve_isapi.is_some() {
        None
    } else {
        Some(10)
    });
    let rate = match a.generate_every {
        Some(every) if every.is_finite() && every > 0.0 => f64::from(a.devices) / every,
        Some(_) => anyhow::bail!("--generate-every must be a positive number of seconds"),
        None => a.rate,
    };
    let schedule = Schedule {
        count,
        devices: a.devices,
        rate,
        kind: a.kind.unwrap_or(KindArg::Mixed),
        repeat: a.repeat,
    };
    let timing = Timing {
        timeout_ms: secs_ms(a.timeout).max(1),
        retries: a.retries,
        retry_wait_ms: secs_ms(a.retry_wait),
    };
    let json = a.json;
    let sink: Sink = Arc::new(move |r| print_line(&mut std::io::stdout().lock(), json, r));

    let mut server = None;
    let mut side = None;
    let target = if let Some(addr) = &a.serve_isapi {
        let api = if a.isapi_format == IsapiFormatArg::Json {
            ApiFormat::Json
        } else {
            ApiFormat::Xml
        };
        let ident = DeviceIdentity::new(
            0,
            "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
        );
        let mut dev = isapi::IsapiDevice::new(&a.isapi_user, &a.isapi_password, api, ident);
        dev.forbid_config = a.forbid_config;
        dev.heartbeat = Duration::from_millis(secs_ms(a.heartbeat).max(100));
        dev.stream_limit = a
            .stream_drop_after
            .map(|s| Duration::from_millis(secs_ms(s).max(1)));
        dev.set_triggers(
            trigger_table(&a.events, &a.unlinked, a.channels)
                .map_err(|e| anyhow::anyhow!("--events/--unlinked: {e}"))?,
        );
        let mut slots = dev.hosts();
        if let Some(s) = slots.first_mut() {
            if let Some(u) = &fixed {
                let change = crate::device::hosts::SlotChange {
                    address: Some(u.host.clone()),
                    port: Some(u.port),
                    url: Some(u.path.clone()),
                    ..Default::default()
                };
                change.apply(s);
                if u.https {
                    s.protocol = "HTTPS".into();
                }
            }
            configure_slot(s, &a);
            if let Some(pw) = &a.host_password {
                dev.set_slot_password(&s.id, pw);
            }
        }
        dev.set_hosts(slots);
        let dev = Arc::new(dev);
        let listener = tokio::net::TcpListener::bind(addr.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("--serve-isapi {addr}: {e}"))?;
        let bound = listener.local_addr()?;
        eprintln!(
            "alarmscope: simulated device ISAPI on http://{bound} (user {:?}, {:?})",
            a.isapi_user, a.isapi_format
        );
        let tester: isapi::TestPusher = {
            let quirks = a.quirks;
            let dev = dev.clone();
            let tls_client = tls_client.clone();
            Arc::new(move |slot: HostSlot| {
                let tls_client = tls_client.clone();
                let auth =
                    PushAuth::from_slot(&slot.auth, &slot.user_name, &dev.slot_password(&slot.id));
                Box::pin(async move {
                    let url = match slot_url(&slot) {
                        Ok(u) if !slot.is_unused() => u,
                        _ => return Some("connect server fail".to_string()),
                    };
                    let Some(addr) = resolve(&url).await else {
                        return Some("connect server fail".to_string());
                    };
                    let source = source_for(addr.ip(), 0);
                    let id = DeviceIdentity::new(
                        0,
                        source
                            .or_else(|| local_ip_towards(addr))
                            .unwrap_or(addr.ip()),
                    );
                    let format = if slot.format.eq_ignore_ascii_case("JSON") {
                        BodyFormat::Json
                    } else {
                        BodyFormat::Xml
                    };
                    let spec = EventSpec {
                        kind: events::EventKind::Vmd,
                        format,
                        seq: 0,
                        active_post_count: 1,
                        quirks,
                        channel: None,
                    };
                    let at = Timestamp::now();
                    let push = build_push(&id, &spec, at);
                    let host = url.host_header();
                    let build =
                        |a: Option<&str>| request_bytes_auth(&host, &url.path, &push, at, a);
                    let tls = slot.protocol.eq_ignore_ascii_case("HTTPS");
                    match attempt_auth(
                        addr,
                        source,
                        &transport(tls, &url, &tls_client),
                        &url.path,
                        &build,
                        &auth,
                        Duration::from_secs(5),
                    )
                    .await
                    {
                        Outcome::Answered(200) => None,
                        Outcome::ConnectFailed => Some("connect server fail".to_string()),
                        _ => Some("server response fail".to_string()),
                    }
                }) as futures_util::future::BoxFuture<'static, Option<String>>
            })
        };
        server = Some(tokio::spawn(isapi::serve(listener, dev.clone(), tester)));
        side = Some(DeviceSide {
            dev: dev.clone(),
            memo: Arc::default(),
            trigger_driven: a.kind.is_none(),
            start_wall: Timestamp::now(),
        });
        Target::Isapi(dev)
    } else {
        match fixed {
            Some(u) => Target::Fixed(u),
            None => anyhow::bail!("--to is required"),
        }
    };

    // With --serve-isapi and no host yet, wait for `device set` before the schedule starts.
    if let Target::Isapi(dev) = &target {
        let mut said = false;
        while dev.active_host().is_none() {
            if !said {
                eprintln!("alarmscope: waiting for an alarm host to be configured over ISAPI");
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let start = Instant::now();
    let mut generators = Vec::new();
    if let Some(sd) = &mut side {
        sd.start_wall = Timestamp::now();
        sd.memo = Arc::default();
    }
    let totals: Vec<Arc<Mutex<Summary>>> = (0..a.devices)
        .map(|_| Arc::new(Mutex::new(Summary::default())))
        .collect();
    let mut tasks = Vec::new();
    for (i, t) in totals.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(sd) = &side {
            generators.push(tokio::spawn(generate_events(
                index,
                schedule,
                sd.clone(),
                start,
            )));
        }
        tasks.push(tokio::spawn(run_device(DeviceRun {
            index,
            schedule,
            timing,
            quirks: a.quirks,
            picture_fault: a.picture_fault,
            target: target.clone(),
            side: side.clone(),
            totals: t.clone(),
            sink: sink.clone(),
            start,
            tls_client: tls_client.clone(),
        })));
    }
    let all = futures_util::future::join_all(tasks);
    let interrupted = tokio::select! {
        _ = all => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    if let Some(s) = server {
        s.abort();
    }
    for g in generators {
        g.abort();
    }
    let mut sum = Summary::default();
    for t in &totals {
        if let Ok(t) = t.lock() {
            sum.merge(&t);
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        let mut v = serde_json::to_value(&sum).unwrap_or_default();
        v["type"] = "summary".into();
        v["interrupted"] = interrupted.into();
        v["elapsed_ms"] = u64::try_from(start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .into();
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "\nsummary over {:.1} s{}:",
            start.elapsed().as_secs_f64(),
            if interrupted { " (interrupted)" } else { "" }
        )?;
        out.write_all(sum.render().as_bytes())?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(unlinked: &[&str]) -> Vec<Trigger> {
        let all = ["VMD", "linedetection", "fielddetection"].map(String::from);
        let un: Vec<String> = unlinked.iter().map(|s| s.to_string()).collect();
        trigger_table(&all, &un, 2).unwrap()
    }

    #[test]
    fn triggers_take_turns_and_decisions_stay_made() {
        let memo = Decisions::default();
        let t = table(&["linedetection"]);
        let d: Vec<Decision> = (0..6)
            .map(|n| decide(&memo, &t, true, n, n, EventKind::Anpr))
            .collect();
        let got: Vec<(EventKind, Option<u32>, bool)> =
            d.iter().map(|d| (d.kind, d.channel, d.linked)).collect();
        assert_eq!(
            got,
            [
                (EventKind::Vmd, Some(1), true),
                (EventKind::Vmd, Some(2), true),
                (EventKind::LineDetection, Some(1), false),
                (EventKind::LineDetection, Some(2), false),
                (EventKind::FieldDetection, Some(1), true),
                (EventKind::FieldDetection, Some(2), true),
            ]
        );
        // Linking the trigger later does not change an event already decided (the stream and
        // the pusher must agree), but it does decide the next one.
        let linked = table(&[]);
        assert!(!decide(&memo, &linked, true, 2, 2, EventKind::Anpr).linked);
        assert!(decide(&memo, &linked, true, 8, 8, EventKind::Anpr).linked);
    }

    #[test]
    fn with_kind_only_a_matching_unlinked_trigger_stops_the_push() {
        let memo = Decisions::default();
        let t = table(&["VMD"]);
        let vmd = decide(&memo, &t, false, 0, 0, EventKind::Vmd);
        assert_eq!(
            (vmd.kind, vmd.channel, vmd.linked),
            (EventKind::Vmd, Some(1), false)
        );
        let anpr = decide(&memo, &t, false, 1, 1, EventKind::Anpr);
        assert_eq!(
            (anpr.kind, anpr.channel, anpr.linked),
            (EventKind::Anpr, None, true)
        );
    }
}
