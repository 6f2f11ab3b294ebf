//! `alarmscope simulate`: behave like one or more devices pushing events to an alarm server, with
//! the device-like reaction to missing `200 OK` answers (timeout, retry, later events held), and
//! optionally the device's ISAPI configuration side (`--serve-isapi`).
//!
//! Event bodies ([`events`]) and the retry/hold state machine ([`machine`]) are pure; [`push`]
//! and [`isapi`] are the socket shells.

pub mod events;
pub mod isapi;
pub mod machine;
pub mod push;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::time::Instant;

use crate::device::hosts::{ApiFormat, HostSlot};
use crate::time::Timestamp;
use events::{build_push, request_bytes, BodyFormat, DeviceIdentity, EventSpec, KindArg};
use machine::{AttemptRecord, DeviceMachine, Outcome, Schedule, Step, Summary, Timing};
use push::{attempt, local_ip_towards, source_for, PushUrl};

/// `--isapi-format`: what the simulated device's configuration API speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsapiFormatArg {
    /// A camera: XML.
    Xml,
    /// An access terminal: JSON only (`?format=json`).
    Json,
}

/// `alarmscope simulate` options.
#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// Push to this alarm server URL, e.g. http://127.0.0.1:8080/alarm. With --serve-isapi it is
    /// the initial host slot 1 and may be left out (then pushes start once a host is configured).
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Number of simulated devices (distinct MACs and ids; distinct 127.0.0.x sources on loopback).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub devices: u32,
    /// Total number of posts (retries not counted). Default 10, or unlimited with --serve-isapi.
    #[arg(long)]
    pub count: Option<u64>,
    /// Posts per second over all devices.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// What to send.
    #[arg(long, value_enum, default_value_t = KindArg::Mixed)]
    pub kind: KindArg,
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

fn slot_url(slot: &HostSlot) -> Result<PushUrl, String> {
    if slot.protocol.eq_ignore_ascii_case("HTTPS") {
        return Err("the configured host uses HTTPS; the simulator pushes plain HTTP only".into());
    }
    let port: u16 = slot
        .port
        .parse()
        .map_err(|_| format!("bad port {:?}", slot.port))?;
    let path = if slot.url.starts_with('/') {
        slot.url.clone()
    } else {
        format!("/{}", slot.url)
    };
    Ok(PushUrl {
        host: slot.address().to_string(),
        port,
        path,
    })
}

impl Target {
    fn current(&self) -> Option<(Result<PushUrl, String>, Option<BodyFormat>)> {
        match self {
            Target::Fixed(u) => Some((Ok(u.clone()), None)),
            Target::Isapi(dev) => {
                let slot = dev.active_host()?;
                let fmt = if slot.format.eq_ignore_ascii_case("JSON") {
                    BodyFormat::Json
                } else {
                    BodyFormat::Xml
                };
                Some((slot_url(&slot), Some(fmt)))
            }
        }
    }
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

fn now_ts() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Output of the run: attempt records and warnings, printed by the caller's sink.
pub enum Report<'a> {
    Attempt(&'a AttemptRecord, &'a str),
    Warning(String),
}

type Sink = Arc<dyn Fn(Report<'_>) + Send + Sync>;

/// Everything one device task needs.
struct DeviceRun {
    index: u32,
    schedule: Schedule,
    timing: Timing,
    quirks: bool,
    target: Target,
    totals: Arc<Mutex<Summary>>,
    sink: Sink,
    start: Instant,
}

async fn run_device(r: DeviceRun) {
    let DeviceRun {
        index,
        schedule,
        timing,
        quirks,
        target,
        totals,
        sink,
        start,
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
                planned,
                attempt: _,
            } => {
                let begun = Instant::now();
                let started_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                let (outcome, to) = match target.current() {
                    None => (Outcome::ConnectFailed, "(no host configured)".to_string()),
                    Some((Err(e), _)) => {
                        if !warned {
                            sink(Report::Warning(format!("device {index}: {e}")));
                            warned = true;
                        }
                        (Outcome::ConnectFailed, String::new())
                    }
                    Some((Ok(url), fmt)) => match resolve(&url).await {
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
                                (
                                    events::EventKind::Vmd
                                    | events::EventKind::LineDetection
                                    | events::EventKind::FieldDetection
                                    | events::EventKind::PeopleCounting,
                                    Some(f),
                                ) => f,
                                _ => planned.format,
                            };
                            let spec = EventSpec {
                                kind: planned.kind,
                                format,
                                seq: planned.seq,
                                active_post_count: planned.active_post_count,
                                quirks,
                            };
                            let at = now_ts();
                            let p = match cached.take() {
                                Some((seq, p)) if seq == planned.seq => p,
                                _ => build_push(&id, &spec, at),
                            };
                            let req = request_bytes(&url.host_header(), &url.path, &p, at);
                            cached = Some((planned.seq, p));
                            let o = attempt(
                                addr,
                                source,
                                &req,
                                Duration::from_millis(timing.timeout_ms),
                            )
                            .await;
                            (o, format!("http://{}{}", url.host_header(), url.path))
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
    let count = a.count.or(if a.serve_isapi.is_some() {
        None
    } else {
        Some(10)
    });
    let schedule = Schedule {
        count,
        devices: a.devices,
        rate: a.rate,
        kind: a.kind,
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
        let dev = Arc::new(isapi::IsapiDevice::new(
            &a.isapi_user,
            &a.isapi_password,
            api,
            &ident.serial,
        ));
        if let Some(u) = &fixed {
            let mut slots = dev.hosts();
            if let Some(s) = slots.first_mut() {
                let change = crate::device::hosts::SlotChange {
                    address: Some(u.host.clone()),
                    port: Some(u.port),
                    url: Some(u.path.clone()),
                    ..Default::default()
                };
                change.apply(s);
            }
            dev.set_hosts(slots);
        }
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
            Arc::new(move |slot: HostSlot| {
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
                    };
                    let at = now_ts();
                    let req = request_bytes(
                        &url.host_header(),
                        &url.path,
                        &build_push(&id, &spec, at),
                        at,
                    );
                    match attempt(addr, source, &req, Duration::from_secs(5)).await {
                        Outcome::Answered(200) => None,
                        Outcome::ConnectFailed => Some("connect server fail".to_string()),
                        _ => Some("server response fail".to_string()),
                    }
                }) as futures_util::future::BoxFuture<'static, Option<String>>
            })
        };
        server = Some(tokio::spawn(isapi::serve(listener, dev.clone(), tester)));
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
    let totals: Vec<Arc<Mutex<Summary>>> = (0..a.devices)
        .map(|_| Arc::new(Mutex::new(Summary::default())))
        .collect();
    let mut tasks = Vec::new();
    for (i, t) in totals.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        tasks.push(tokio::spawn(run_device(DeviceRun {
            index,
            schedule,
            timing,
            quirks: a.quirks,
            target: target.clone(),
            totals: t.clone(),
            sink: sink.clone(),
            start,
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
