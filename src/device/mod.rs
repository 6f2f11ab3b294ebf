//! `alarmscope device caps|get|set|test`: read and change a device's alarm hosts (ISAPI
//! httpHosts) with HTTP digest authentication, and ask it to test one.
//!
//! [`hosts`] holds the pure document logic; [`client`] the HTTP shell.

pub mod client;
pub mod hosts;
pub mod info;
pub mod protocol_note;
pub mod triggers;
pub mod watch;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use client::{check_status, Answer, DeviceError, IsapiClient};
use hosts::{
    caps_summary, diff_slots, edit_host_list, parse_caps, parse_host_list, parse_test_result,
    render_slot, sniff_format, ApiFormat, HostSlot, SlotChange,
};

const HOSTS: &str = "/ISAPI/Event/notification/httpHosts";

/// `alarmscope device` arguments.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    pub action: DeviceAction,
}

/// The four device actions.
#[derive(Debug, Subcommand)]
pub enum DeviceAction {
    /// Show what the device supports for alarm hosts (slots, protocols, formats, ports, auth).
    Caps(ConnArgs),
    /// List the alarm host slots.
    Get(ConnArgs),
    /// Change one alarm host slot, then read it back and show the difference.
    Set(SetArgs),
    /// Ask the device to send its test message to a configured host.
    Test(TestArgs),
    /// Show the device's own event stream (alertStream) live: every event it generates, pushed
    /// or not; keep-alives counted, not listed.
    Watch(WatchArgs),
}

/// `device watch` arguments.
#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Stop after this many seconds (default: until Ctrl-C, or q in the TUI).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

/// Which wire format to use with the device's configuration API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// Plain request first; `?format=json` if the device refuses it.
    Auto,
    Xml,
    Json,
}

/// How to reach and log in to the device.
#[derive(Debug, Args, Clone)]
pub struct ConnArgs {
    /// The device, http(s)://IP\[:PORT\].
    #[arg(long, value_name = "URL")]
    pub device: String,
    /// ISAPI user.
    #[arg(long, default_value = "admin")]
    pub user: String,
    /// Password (else the environment variable, else a prompt).
    #[arg(long, env = "ALARMSCOPE_DEVICE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Accept any TLS certificate (devices use self-signed ones).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Configuration API format.
    #[arg(long, value_enum, default_value_t = ApiArg::Auto)]
    pub api: ApiArg,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `HTTP` or `HTTPS` for `set --protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    #[value(name = "HTTP", alias = "http")]
    Http,
    #[value(name = "HTTPS", alias = "https")]
    Https,
}

/// `XML` or `JSON` for `set --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    #[value(name = "XML", alias = "xml")]
    Xml,
    #[value(name = "JSON", alias = "json")]
    Json,
}

/// `device set` arguments.
#[derive(Debug, Args, Clone)]
pub struct SetArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Host slot id.
    #[arg(long)]
    pub id: String,
    /// Alarm server IP address or host name.
    #[arg(long)]
    pub address: Option<String>,
    /// Alarm server port.
    #[arg(long)]
    pub port: Option<u16>,
    /// URL path the device posts to.
    #[arg(long)]
    pub url: Option<String>,
    /// HTTP or HTTPS (a mismatch with the server silently stops delivery).
    #[arg(long, value_enum)]
    pub protocol: Option<ProtocolArg>,
    /// Event body format (parameterFormatType).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}

/// `device test` arguments.
#[derive(Debug, Args, Clone)]
pub struct TestArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Host slot id to test.
    #[arg(long, default_value = "1")]
    pub id: String,
}

/// What to do when the device cannot test a host itself.
pub const TRIGGER_HELP: &str = "To make the device send a real event instead: link an event to the alarm host \
(e.g. Motion Detection -> Linkage Method -> Notify Surveillance Center), arm its schedule, then trigger it \
(walk in front of the camera, close an alarm input, swipe a card on an access terminal). Watch the result with \
`alarmscope listen` or `alarmscope sniff`.";

/// Ask for the password on the terminal (no echo), or read a line when stdin is no terminal.
pub(crate) fn read_password(user: &str, device: &str) -> anyhow::Result<String> {
    use crossterm::event::{read, Event, KeyCode, KeyEventKind, KeyModifiers};
    eprint!("Password for {user} on {device}: ");
    let _ = std::io::stderr().flush();
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    crossterm::terminal::enable_raw_mode()?;
    let mut pw = String::new();
    let result = loop {
        match read() {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => match k.code {
                KeyCode::Enter => break Ok(()),
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    break Err(anyhow::anyhow!("cancelled"))
                }
                KeyCode::Esc => break Err(anyhow::anyhow!("cancelled")),
                KeyCode::Backspace => {
                    pw.pop();
                }
                KeyCode::Char(c) => pw.push(c),
                _ => {}
            },
            Ok(_) => {}
            Err(e) => break Err(e.into()),
        }
    };
    let _ = crossterm::terminal::disable_raw_mode();
    eprintln!();
    result.map(|_| pw)
}

impl ConnArgs {
    /// The password: `--password`, else the environment variable, else a prompt.
    pub fn password(&self) -> anyhow::Result<String> {
        match &self.password {
            Some(p) => Ok(p.clone()),
            None => read_password(&self.user, &self.device),
        }
    }

    /// `--timeout` as a duration (10 s when not a positive number; an hour at most).
    pub fn timeout(&self) -> Duration {
        let secs = if self.timeout.is_finite() && self.timeout > 0.0 {
            self.timeout.min(3600.0)
        } else {
            10.0
        };
        Duration::from_secs_f64(secs)
    }

    /// A client logged in with `password`.
    pub fn client(&self, password: &str) -> Result<IsapiClient, DeviceError> {
        IsapiClient::new(
            &self.device,
            &self.user,
            password,
            self.insecure,
            self.timeout(),
        )
    }

    /// The same login for a stream thread.
    pub fn stream_login(&self, password: &str) -> watch::StreamLogin {
        watch::StreamLogin {
            device: self.device.clone(),
            user: self.user.clone(),
            password: password.to_string(),
            insecure: self.insecure,
            timeout: self.timeout(),
        }
    }
}

fn connect(c: &ConnArgs) -> anyhow::Result<IsapiClient> {
    Ok(c.client(&c.password()?)?)
}

pub(crate) fn with_json(path: &str) -> String {
    format!("{path}?format=json")
}

/// Errors that a retry with `?format=json` cannot fix.
fn is_final(e: &DeviceError) -> bool {
    matches!(
        e,
        DeviceError::Unreachable { .. }
            | DeviceError::Timeout { .. }
            | DeviceError::Tls { .. }
            | DeviceError::WrongPassword { .. }
            | DeviceError::NoDigest { .. }
            | DeviceError::Forbidden { .. }
            | DeviceError::Usage(_)
    )
}

/// GET a document in the format the device speaks; returns the answer, its format and the target
/// used (to PUT back to the same place).
pub(crate) fn fetch(
    client: &mut IsapiClient,
    api: ApiArg,
    path: &str,
) -> Result<(Answer, ApiFormat, String), DeviceError> {
    let got = |a: Answer, t: String| {
        let f = sniff_format(&a.body).unwrap_or(ApiFormat::Xml);
        (a, f, t)
    };
    match api {
        ApiArg::Xml => client
            .document("GET", path, None)
            .map(|a| got(a, path.to_string())),
        ApiArg::Json => {
            let t = with_json(path);
            client.document("GET", &t, None).map(|a| got(a, t))
        }
        ApiArg::Auto => match client.document("GET", path, None) {
            Ok(a) => Ok(got(a, path.to_string())),
            Err(e) if is_final(&e) => Err(e),
            Err(first) => {
                let t = with_json(path);
                client
                    .document("GET", &t, None)
                    .map(|a| got(a, t))
                    .map_err(|_| first)
            }
        },
    }
}

fn fmt_name(f: ApiFormat) -> &'static str {
    match f {
        ApiFormat::Xml => "XML",
        ApiFormat::Json => "JSON",
    }
}

/// Host list as an aligned text table.
pub fn render_table(slots: &[HostSlot]) -> String {
    let head = ["id", "url", "protocol", "format", "address", "port", "auth"];
    let rows: Vec<[String; 7]> = slots
        .iter()
        .map(|s| {
            let addr = if s.is_unused() {
                format!("{} (unused)", s.address())
            } else {
                s.address().to_string()
            };
            [
                s.id.clone(),
                s.url.clone(),
                s.protocol.clone(),
                s.format.clone(),
                addr,
                s.port.clone(),
                s.auth.clone(),
            ]
        })
        .collect();
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let width = w.get(i).copied().unwrap_or(0);
            s.push_str(&format!("{c:<width$}  "));
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn caps(c: &ConnArgs) -> anyhow::Result<()> {
    let mut client = connect(c)?;
    let (a, f, _) = fetch(&mut client, c.api, &format!("{HOSTS}/capabilities"))?;
    let items = parse_caps(&a.body).map_err(DeviceError::from)?;
    let rows = caps_summary(&items);
    let mut out = std::io::stdout().lock();
    if c.json {
        let summary: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({"api": fmt_name(f), "summary": summary, "items": items})
        )?;
    } else {
        writeln!(out, "Alarm host capabilities ({} API):", fmt_name(f))?;
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            writeln!(out, "  {k:<w$}  {v}")?;
        }
    }
    Ok(())
}

fn get(c: &ConnArgs) -> anyhow::Result<()> {
    let mut client = connect(c)?;
    let (a, f, _) = fetch(&mut client, c.api, HOSTS)?;
    let slots = parse_host_list(&a.body).map_err(DeviceError::from)?;
    let mut out = std::io::stdout().lock();
    if c.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"api": fmt_name(f), "slots": slots})
        )?;
    } else {
        writeln!(out, "Alarm hosts ({} API):", fmt_name(f))?;
        out.write_all(render_table(&slots).as_bytes())?;
    }
    Ok(())
}

/// Fields the change asked for that the device does not show afterwards.
pub fn unapplied(
    expected: &HostSlot,
    after: &HostSlot,
    change: &SlotChange,
) -> Vec<(&'static str, String, String)> {
    let wanted: Vec<&str> = change.assignments().iter().map(|(n, _)| *n).collect();
    expected
        .fields()
        .iter()
        .zip(after.fields().iter())
        .filter(|((n, e), (_, a))| wanted.contains(n) && !e.eq_ignore_ascii_case(a))
        .map(|((n, e), (_, a))| (*n, e.to_string(), a.to_string()))
        .collect()
}

fn set(a: &SetArgs) -> anyhow::Result<()> {
    let change = SlotChange {
        address: a.address.clone(),
        port: a.port,
        url: a.url.clone(),
        protocol: a.protocol.map(|p| {
            if p == ProtocolArg::Https {
                "HTTPS".into()
            } else {
                "HTTP".into()
            }
        }),
        format: a.format.map(|f| {
            if f == FormatArg::Json {
                "JSON".into()
            } else {
                "XML".into()
            }
        }),
    };
    if change.is_empty() {
        anyhow::bail!(DeviceError::Usage(
            "nothing to change: give --address, --port, --url, --protocol or --format".into()
        ));
    }
    let c = &a.conn;
    let mut client = connect(c)?;
    let (before_doc, f, target) = fetch(&mut client, c.api, HOSTS)?;
    let before = parse_host_list(&before_doc.body).map_err(DeviceError::from)?;
    let new_doc = edit_host_list(&before_doc.body, &a.id, &change).map_err(DeviceError::from)?;
    let answer = client.request("PUT", &target, Some((&new_doc, f.content_type())))?;
    let status = match check_status(&answer) {
        Ok(s) => s,
        Err(DeviceError::Http { status, .. }) => {
            return Err(client::classify(HOSTS, &answer_with(status, answer)).into())
        }
        Err(e) => return Err(e.into()),
    };
    let (after_doc, _, _) = fetch(
        &mut client,
        if f == ApiFormat::Json {
            ApiArg::Json
        } else {
            ApiArg::Xml
        },
        HOSTS,
    )?;
    let after = parse_host_list(&after_doc.body).map_err(DeviceError::from)?;
    let diff = diff_slots(&before, &after);
    let mut expected = before
        .iter()
        .find(|s| s.id == a.id)
        .cloned()
        .unwrap_or_default();
    change.apply(&mut expected);
    let after_slot = after
        .iter()
        .find(|s| s.id == a.id)
        .cloned()
        .unwrap_or_default();
    let missing = unapplied(&expected, &after_slot, &change);
    let note = protocol_note::protocol_note(&after_slot, &change);
    let mut out = std::io::stdout().lock();
    if c.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"api": fmt_name(f), "status": status, "changes": diff,
                "not_applied": missing.iter().map(|(n, e, g)| serde_json::json!({"field": n, "asked": e, "device_shows": g})).collect::<Vec<_>>(),
                "protocol_note": note.as_ref().map(|n| serde_json::json!({"protocol": n.protocol, "changed": n.changed, "server": n.server, "text": n.to_string()})),
                "slots": after})
        )?;
    } else {
        writeln!(out, "PUT {target}: {}", status.describe())?;
        if diff.is_empty() {
            writeln!(
                out,
                "No difference: slot {} already had these values.",
                a.id
            )?;
        } else {
            writeln!(out, "Changed:")?;
            for d in &diff {
                writeln!(
                    out,
                    "  slot {} {}: {:?} -> {:?}",
                    d.id, d.field, d.before, d.after
                )?;
            }
        }
        out.write_all(render_table(&after).as_bytes())?;
        if let Some(n) = &note {
            writeln!(out, "Note: {n}.")?;
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|(n, e, g)| format!("{n} asked {e:?}, device shows {g:?}"))
            .collect();
        anyhow::bail!(
            "the device accepted the change but did not apply it: {}",
            list.join("; ")
        );
    }
    Ok(())
}

fn answer_with(status: u16, mut a: Answer) -> Answer {
    a.status = status;
    a
}

fn test(a: &TestArgs) -> anyhow::Result<()> {
    let c = &a.conn;
    let mut client = connect(c)?;
    let (list, f, _) = fetch(&mut client, c.api, HOSTS)?;
    let slots = parse_host_list(&list.body).map_err(DeviceError::from)?;
    let Some(slot) = slots.iter().find(|s| s.id == a.id) else {
        anyhow::bail!(DeviceError::Doc(hosts::DocError::NoSuchSlot(a.id.clone())));
    };
    let mut out = std::io::stdout().lock();
    if slot.is_unused() {
        writeln!(out, "Slot {} has no address yet: set one with `alarmscope device set --id {} --address ...` first.", a.id, a.id)?;
        return Ok(());
    }
    let path = format!("{HOSTS}/{}/test", a.id);
    let target = if f == ApiFormat::Json {
        with_json(&path)
    } else {
        path.clone()
    };
    let body = render_slot(slot, f);
    let ans = client.request("POST", &target, Some((&body, f.content_type())))?;
    let dest = format!(
        "{}://{}:{}{}",
        slot.protocol.to_ascii_lowercase(),
        slot.address(),
        slot.port,
        slot.url
    );
    if ans.is_success() {
        let r = parse_test_result(&ans.body).unwrap_or_default();
        if c.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"slot": a.id, "to": dest, "ok": r.error.is_empty(), "error": r.error, "items": r.items})
            )?;
        } else if r.error.is_empty() {
            writeln!(out, "The device reports the test to {dest} succeeded.")?;
            writeln!(out, "Some models only open a TCP connection for the test; a real event still needs the event linked to \"Notify Surveillance Center\" and armed.")?;
        } else {
            writeln!(
                out,
                "The device reports the test to {dest} failed: {}",
                r.error
            )?;
            writeln!(out, "Check from the device's network that {}:{} accepts connections (firewall, NAT), that the server answers 200 OK, and that HTTP/HTTPS match.", slot.address(), slot.port)?;
        }
        return if r.error.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("test failed: {}", r.error))
        };
    }
    let explain = match ans.status {
        404 | 405 | 501 => "this device does not offer a host test.".to_string(),
        500 => "the device answered 500 Internal Server Error; several camera models answer /test this way, so the test is not available on it.".to_string(),
        403 => return Err(client::classify(&path, &ans).into()),
        _ => match client::classify(&path, &ans) {
            DeviceError::NotSupported { .. } => "this device does not offer a host test.".to_string(),
            other => return Err(other.into()),
        },
    };
    if c.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"slot": a.id, "to": dest, "ok": serde_json::Value::Null, "status": ans.status, "explain": explain, "trigger": TRIGGER_HELP})
        )?;
    } else {
        writeln!(out, "POST {path}: {explain}")?;
        writeln!(out, "{TRIGGER_HELP}")?;
    }
    Ok(())
}

/// Run `alarmscope device`. Returns the process exit code (0 ok, 1 device error, 2 usage).
pub fn run(a: DeviceArgs) -> anyhow::Result<i32> {
    let r = match &a.action {
        DeviceAction::Caps(c) => caps(c),
        DeviceAction::Get(c) => get(c),
        DeviceAction::Set(s) => set(s),
        DeviceAction::Test(t) => test(t),
        DeviceAction::Watch(w) => watch::run(w),
    };
    match r {
        Ok(()) => Ok(0),
        Err(e) => {
            eprintln!("alarmscope: {e}");
            let usage = matches!(e.downcast_ref::<DeviceError>(), Some(DeviceError::Usage(_)));
            Ok(if usage { 2 } else { 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_alignment() {
        let s = HostSlot {
            id: "1".into(),
            url: "/alarm".into(),
            protocol: "HTTP".into(),
            format: "XML".into(),
            addressing: "ipaddress".into(),
            ip_address: "192.0.2.10".into(),
            port: "8080".into(),
            auth: "none".into(),
            ..Default::default()
        };
        let t = render_table(&[s]);
        assert_eq!(
            t,
            "id  url     protocol  format  address     port  auth\n1   /alarm  HTTP      XML     192.0.2.10  8080  none\n"
        );
    }

    #[test]
    fn unapplied_fields() {
        let change = SlotChange {
            port: Some(9000),
            address: Some("192.0.2.5".into()),
            ..Default::default()
        };
        let mut expected = HostSlot {
            id: "1".into(),
            port: "80".into(),
            ..Default::default()
        };
        change.apply(&mut expected);
        let mut after = expected.clone();
        assert!(unapplied(&expected, &after, &change).is_empty());
        after.port = "80".into();
        assert_eq!(
            unapplied(&expected, &after, &change),
            vec![("portNo", "9000".to_string(), "80".to_string())]
        );
    }
}
