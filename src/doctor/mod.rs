//! `alarmscope doctor`: walk the whole chain for one device and show where its events are lost.
//!
//! Four steps, each a list of [`check::Check`]s printed as they are made: (1) the device answers
//! ISAPI, who it is, credentials and permissions; (2) the alarm host slots and what answers at
//! their address from here; (3) which event triggers notify the surveillance center; (4) with
//! `--listen`, a temporary listener, the device's host test, and the device's own alertStream
//! watched against the pushes that arrive.
//!
//! The judgments are pure ([`judge`]); this module, [`probe`] and [`live`] are the shell (HTTP
//! to the device, TCP/TLS probes, the listener and the stream thread).

pub mod check;
pub mod judge;
pub mod live;
pub mod probe;
pub mod render;

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::device::client::{DeviceError, IsapiClient};
use crate::device::hosts::{parse_host_list, HostSlot};
use crate::device::info::parse_device_info;
use crate::device::triggers::parse_triggers;
use crate::device::{fetch, ApiArg};
use check::{Check, Finding, Scheme, Step};
use judge::{judge_slot, judge_triggers, per_type_ids, slots_to_judge, unlinked_types, Expected};
use render::Reporter;

const HOSTS: &str = "/ISAPI/Event/notification/httpHosts";
const TRIGGERS: &str = "/ISAPI/Event/triggers";
const DEVICE_INFO: &str = "/ISAPI/System/deviceInfo";

/// What the alarm server parses, for `--server-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatExpect {
    #[value(name = "XML", alias = "xml")]
    Xml,
    #[value(name = "JSON", alias = "json")]
    Json,
}

/// `alarmscope doctor` arguments.
#[derive(Debug, Args, Clone)]
pub struct DoctorArgs {
    /// The device and how to log in (`--api` chooses the configuration API format; `--json`
    /// prints one JSON object per check, then a summary line: docs/doctor.md).
    #[command(flatten)]
    pub conn: crate::device::ConnArgs,
    /// Run a temporary alarm server on ADDR (ip:port of this machine that the device can
    /// reach), ask the device to test its slot, and compare the events the device generates
    /// with the pushes that arrive (step 4).
    #[arg(long, value_name = "ADDR", conflicts_with = "server")]
    pub listen: Option<String>,
    /// Your alarm server, http(s)://HOST:PORT/PATH: the slots are checked against it.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The body format your alarm server parses (a slot sending the other fails).
    #[arg(long, value_enum, value_name = "XML|JSON")]
    pub server_format: Option<FormatExpect>,
    /// With --listen: require credentials as your alarm server does (the device's pushes must
    /// carry them).
    #[arg(long, value_enum, requires = "listen")]
    pub listen_auth: Option<crate::listen::auth::AuthScheme>,
    /// User name required with --listen-auth.
    #[arg(long, requires = "listen_auth")]
    pub listen_user: Option<String>,
    /// Password required with --listen-auth.
    #[arg(long, requires = "listen_auth")]
    pub listen_password: Option<String>,
    /// Seconds to watch the device's events in step 4 (600 at most).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub watch: f64,
    /// A push arriving more than SECS after the device generated its event is late.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub late: f64,
    /// Check that the account may change the event configuration by writing the alarm host
    /// list back unchanged (a PUT of the device's own document; off by default, as doctor
    /// otherwise changes nothing).
    #[arg(long)]
    pub try_write: bool,
    /// With --listen: answer like a slow or failing server (`listen --fault` syntax). For
    /// reproducing late pushes in tests; doctor's listener has no faults otherwise.
    #[arg(long, hide = true, value_name = "SPEC", value_parser = parse_fault, requires = "listen")]
    pub listen_fault: Vec<crate::listen::FaultSpec>,
}

fn parse_fault(s: &str) -> Result<crate::listen::FaultSpec, crate::listen::fault::FaultSpecError> {
    s.parse()
}

/// Seconds from the command line (`default` when not a number or negative; a day at most).
fn secs(s: f64, default: f64) -> Duration {
    let s = if s.is_finite() && s >= 0.0 {
        s
    } else {
        default
    };
    Duration::try_from_secs_f64(s.min(86_400.0)).unwrap_or(Duration::from_secs(10))
}

/// `--server`: scheme, host, port and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Why `--server` could not be read (each names the option, since it is printed as is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerUrlError {
    #[error("--server must start with http:// or https:// (got {0:?})")]
    NoScheme(String),
    #[error("unclosed [ in --server")]
    UnclosedBracket,
    #[error("bad port in --server {0:?}")]
    BadPort(String),
    #[error("no host in --server {0:?}")]
    NoHost(String),
}

/// Parse `http(s)://HOST[:PORT][/PATH]` (IPv6 hosts in brackets).
pub fn parse_server_url(u: &str) -> Result<ServerUrl, ServerUrlError> {
    let (scheme, rest) = if let Some(r) = u.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = u.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err(ServerUrlError::NoScheme(u.to_string()));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    let default = if scheme == Scheme::Https { 443 } else { 80 };
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let (h, p) = r.split_once(']').ok_or(ServerUrlError::UnclosedBracket)?;
        (h.to_string(), p.strip_prefix(':').map(str::to_string))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| ServerUrlError::BadPort(u.to_string()))?,
        None => default,
    };
    if host.is_empty() {
        return Err(ServerUrlError::NoHost(u.to_string()));
    }
    Ok(ServerUrl {
        scheme,
        host,
        port,
        path: path.to_string(),
    })
}

/// Run `alarmscope doctor`. Exit code: 0 no check failed, 1 some failed, 2 usage.
pub fn run(a: DoctorArgs) -> anyhow::Result<i32> {
    let server = match a.server.as_deref().map(parse_server_url).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alarmscope: {e}");
            return Ok(2);
        }
    };
    let c = &a.conn;
    let password = c.password()?;
    let timeout = c.timeout();
    let mut client = match c.client(&password) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("alarmscope: {e}");
            return Ok(2);
        }
    };
    let mut rep = Reporter::new(c.json, std::io::stdout());
    rep.start(&c.device);

    // The listener first: step 2 probes it like any server.
    let mut listener = match &a.listen {
        Some(addr) => match live::Listener::start(addr, &a) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("alarmscope: {e:#}");
                return Ok(2);
            }
        },
        None => None,
    };

    let side = match (&listener, server) {
        (Some(l), _) => ServerSide::Listen(l.addr, l.display()),
        (None, Some(s)) => ServerSide::Server(s),
        (None, None) => ServerSide::Unknown,
    };
    let format = a.server_format.map(fmt_name);

    let device = c.device.trim_end_matches('/').to_string();
    let go_on = step_device_info(&mut client, &device, &c.user, &mut |f| {
        rep.add(Check::new(Step::Device, f))
    });
    if !go_on {
        if let Some(l) = listener.take() {
            l.stop();
        }
        return Ok(rep.finish());
    }
    let slots = step_config(&mut client, c.api, a.try_write, &mut |f| {
        rep.add(Check::new(Step::Device, f))
    });
    let timeout = timeout.min(Duration::from_secs(5));
    let listener_slot = step_hosts(slots.as_deref(), &side, format, timeout, &mut |f| {
        rep.add(Check::new(Step::AlarmHosts, f))
    });
    let unlinked = step_linkage(&mut client, c.api, &mut |f| {
        rep.add(Check::new(Step::Linkage, f))
    });
    match listener.as_mut() {
        None => rep.add(Check::new(Step::Live, Finding::LiveNotRun)),
        Some(l) if slots.is_some() && listener_slot.is_none() => rep.add(Check::new(
            Step::Live,
            Finding::NoSlotToListener {
                listen: l.display(),
            },
        )),
        Some(l) => {
            let opts = live::WatchOptions {
                watch: secs(a.watch, 30.0).min(live::MAX_WATCH),
                late: secs(a.late, 3.0),
                progress: !c.json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let login = c.stream_login(&password);
            for f in l.watch(&mut client, listener_slot.as_ref(), login, &opts, &unlinked) {
                rep.add(Check::new(Step::Live, f));
            }
        }
    }
    if let Some(l) = listener.take() {
        l.stop();
    }
    Ok(rep.finish())
}

/// The server the slots should point at.
enum ServerSide {
    /// Doctor's listener: its address and how it is printed.
    Listen(std::net::SocketAddr, String),
    Server(ServerUrl),
    Unknown,
}

impl ServerSide {
    fn expected(&self, format: Option<String>) -> Option<Expected> {
        match self {
            ServerSide::Listen(addr, display) => Some(Expected {
                display: display.clone(),
                port: addr.port(),
                scheme: Scheme::Http,
                path: None,
                format,
            }),
            ServerSide::Server(s) => Some(Expected {
                display: format!("{}:{}", s.host, s.port),
                port: s.port,
                scheme: s.scheme,
                path: Some(s.path.clone()).filter(|p| p != "/"),
                format,
            }),
            ServerSide::Unknown => None,
        }
    }

    /// Whether the slot's address is the server's (resolved; a listener on 0.0.0.0 is any
    /// address of this machine).
    fn is_server(&self, slot: &HostSlot) -> bool {
        let ips: Vec<std::net::IpAddr> = probe::resolve(slot.address(), 0)
            .into_iter()
            .map(|s| s.ip())
            .collect();
        match self {
            ServerSide::Listen(addr, _) if addr.ip().is_unspecified() => {
                ips.iter().any(|ip| probe::is_local(*ip))
            }
            ServerSide::Listen(addr, _) => ips.contains(&addr.ip()),
            ServerSide::Server(s) => {
                let theirs: Vec<std::net::IpAddr> = probe::resolve(&s.host, 0)
                    .into_iter()
                    .map(|a| a.ip())
                    .collect();
                ips.iter().any(|ip| theirs.contains(ip))
            }
            ServerSide::Unknown => true,
        }
    }
}

/// Step 1's first call: reachable, ISAPI, credentials, identity. False when doctor cannot go on.
fn step_device_info(
    client: &mut IsapiClient,
    device: &str,
    user: &str,
    emit: &mut dyn FnMut(Finding),
) -> bool {
    let reachable = || Finding::Reachable {
        url: device.to_string(),
    };
    let ans = match client.request("GET", DEVICE_INFO, None) {
        Ok(a) => a,
        Err(e) => {
            let f = match e {
                DeviceError::WrongPassword { user, detail } => {
                    emit(reachable());
                    Finding::CredentialsRejected { user, detail }
                }
                DeviceError::NoDigest { offered } => {
                    emit(reachable());
                    Finding::NoDigest { offered }
                }
                DeviceError::NotIsapi { detail } => Finding::NotIsapi { detail },
                other => Finding::Unreachable {
                    url: device.to_string(),
                    detail: other.to_string(),
                },
            };
            emit(f);
            return false;
        }
    };
    if ans.status == 404 && crate::device::hosts::sniff_format(&ans.body).is_none() {
        emit(Finding::NotIsapi {
            detail: format!("{DEVICE_INFO} answered 404 without an ISAPI document"),
        });
        return false;
    }
    emit(reachable());
    emit(Finding::CredentialsAccepted {
        user: user.to_string(),
    });
    emit(if ans.is_success() {
        match parse_device_info(&ans.body) {
            Ok(info) => Finding::Identity { info },
            Err(e) => Finding::IdentityUnreadable {
                detail: e.to_string(),
            },
        }
    } else {
        Finding::IdentityUnreadable {
            detail: crate::device::client::classify(DEVICE_INFO, &ans).to_string(),
        }
    });
    true
}

/// Step 1's permission checks: the alarm host list read (403 named), and written back with
/// `--try-write`. The slots when they could be read.
fn step_config(
    client: &mut IsapiClient,
    api: ApiArg,
    write: bool,
    emit: &mut dyn FnMut(Finding),
) -> Option<Vec<HostSlot>> {
    let unreadable = |detail: String| Finding::ConfigUnreadable {
        path: HOSTS.into(),
        detail,
    };
    let slots = match fetch(client, api, HOSTS) {
        Ok((ans, _, _)) => match parse_host_list(&ans.body) {
            Ok(s) => {
                emit(Finding::ConfigReadable { path: HOSTS.into() });
                Some(s)
            }
            Err(e) => {
                emit(unreadable(e.to_string()));
                None
            }
        },
        Err(DeviceError::Forbidden { path, detail }) => {
            emit(Finding::ConfigForbidden { path, detail });
            None
        }
        Err(e) => {
            emit(unreadable(e.to_string()));
            None
        }
    };
    emit(if slots.is_some() && write {
        try_write(client, api)
    } else {
        Finding::WriteNotTested
    });
    slots
}

/// Step 2: each slot in use (or those pointing at the server), probed from here. The slot that
/// points at doctor's listener, when there is one.
fn step_hosts(
    slots: Option<&[HostSlot]>,
    side: &ServerSide,
    format: Option<String>,
    timeout: Duration,
    emit: &mut dyn FnMut(Finding),
) -> Option<HostSlot> {
    let Some(all) = slots else {
        emit(Finding::ConfigUnreadable {
            path: HOSTS.into(),
            detail: "the alarm host slots could not be read (step 1)".into(),
        });
        return None;
    };
    let expected = side.expected(format);
    let in_use: Vec<&HostSlot> = all.iter().filter(|s| !s.is_unused()).collect();
    if in_use.is_empty() {
        emit(Finding::NoSlotInUse { slots: all.len() });
    }
    let mut listener_slot = None;
    for slot in slots_to_judge(&in_use, expected.as_ref(), &|s| side.is_server(s)) {
        let at_server = expected.as_ref().map(|_| side.is_server(slot));
        let port = slot.port.trim().parse::<u16>().unwrap_or(0);
        let p = probe::probe(slot.address(), port, &slot.url, timeout);
        if matches!(side, ServerSide::Listen(..))
            && listener_slot.is_none()
            && at_server == Some(true)
            && expected.as_ref().is_some_and(|e| e.port == port)
        {
            listener_slot = Some(slot.clone());
        }
        for f in judge_slot(slot, expected.as_ref(), at_server, Some(&p)) {
            emit(f);
        }
    }
    listener_slot
}

/// Step 3: the trigger list and the smart-event triggers it leaves out. The event types no
/// trigger links to the center (for step 4).
fn step_linkage(
    client: &mut IsapiClient,
    api: ApiArg,
    emit: &mut dyn FnMut(Finding),
) -> Vec<String> {
    let unreadable = |detail: String| Finding::TriggersUnreadable { detail };
    match fetch(client, api, TRIGGERS) {
        Ok((ans, _, _)) => match parse_triggers(&ans.body) {
            Ok(mut t) => {
                t.extend(per_type_triggers(client, api, &t));
                for f in judge_triggers(&t) {
                    emit(f);
                }
                unlinked_types(&t)
            }
            Err(e) => {
                emit(unreadable(e.to_string()));
                Vec::new()
            }
        },
        Err(DeviceError::Forbidden { detail, .. }) => {
            emit(Finding::TriggersForbidden { detail });
            Vec::new()
        }
        Err(e) => {
            emit(unreadable(e.to_string()));
            Vec::new()
        }
    }
}

/// The smart event triggers the list left out, asked one by one; those the device does not
/// have (404, notSupport) or will not show are skipped.
fn per_type_triggers(
    client: &mut IsapiClient,
    api: ApiArg,
    list: &[crate::device::triggers::EventTrigger],
) -> Vec<crate::device::triggers::EventTrigger> {
    let mut out = Vec::new();
    for id in per_type_ids(list) {
        let path = format!("{TRIGGERS}/{id}");
        if let Ok((ans, _, _)) = fetch(client, api, &path) {
            if let Ok(t) = parse_triggers(&ans.body) {
                out.extend(t.into_iter().filter(|t| !t.event_type.is_empty()));
            }
        }
    }
    out
}

/// PUT the alarm host list back as the device gave it: 403 is the permission problem.
fn try_write(client: &mut IsapiClient, api: ApiArg) -> Finding {
    let (doc, format, target) = match fetch(client, api, HOSTS) {
        Ok(x) => x,
        Err(e) => {
            return Finding::ConfigUnreadable {
                path: HOSTS.into(),
                detail: e.to_string(),
            }
        }
    };
    match client.request("PUT", &target, Some((&doc.body, format.content_type()))) {
        Ok(a) if a.is_success() => Finding::ConfigWritable { path: HOSTS.into() },
        Ok(a) => match crate::device::client::classify(HOSTS, &a) {
            DeviceError::Forbidden { path, detail } => Finding::ConfigForbidden { path, detail },
            other => Finding::ConfigUnreadable {
                path: HOSTS.into(),
                detail: other.to_string(),
            },
        },
        Err(e) => Finding::ConfigUnreadable {
            path: HOSTS.into(),
            detail: e.to_string(),
        },
    }
}

fn fmt_name(f: FormatExpect) -> String {
    match f {
        FormatExpect::Xml => "XML".into(),
        FormatExpect::Json => "JSON".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            parse_server_url("http://192.0.2.10:8080/alarm").unwrap(),
            ServerUrl {
                scheme: Scheme::Http,
                host: "192.0.2.10".into(),
                port: 8080,
                path: "/alarm".into()
            }
        );
        let s = parse_server_url("https://[2001:db8::1]/").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.scheme),
            ("2001:db8::1", 443, Scheme::Https)
        );
        assert_eq!(parse_server_url("http://srv").unwrap().port, 80);
        assert_eq!(
            parse_server_url("srv:80"),
            Err(ServerUrlError::NoScheme("srv:80".into()))
        );
        assert_eq!(
            parse_server_url("http://srv:99999/"),
            Err(ServerUrlError::BadPort("http://srv:99999/".into()))
        );
        assert_eq!(
            parse_server_url("http://:80/"),
            Err(ServerUrlError::NoHost("http://:80/".into()))
        );
        assert_eq!(
            parse_server_url("https://[::1:443/"),
            Err(ServerUrlError::UnclosedBracket)
        );
    }
}
