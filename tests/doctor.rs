//! `alarmscope doctor` end to end against `simulate --serve-isapi`: a healthy device and each
//! way events get lost, asserting each step's verdict and the kinds of the findings (never the
//! text).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::net::TcpListener;
use std::process::Command;

use serde_json::Value;

mod common;

use common::sim::{SimDevice, SIM_PASSWORD as PW};

const BIN: &str = env!("CARGO_BIN_EXE_alarmscope");

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Start `simulate --serve-isapi` pushing to `to`, with `extra` options.
fn sim(to: &str, extra: &[&str]) -> SimDevice {
    let mut args = vec![
        "--to",
        to,
        "--rate",
        "4",
        "--timeout",
        "2",
        "--retries",
        "0",
    ];
    args.extend_from_slice(extra);
    SimDevice::start(&args)
}

/// Doctor's JSON lines: the checks and the summary.
struct Run {
    checks: Vec<Value>,
    summary: Value,
    code: i32,
}

impl Run {
    fn step(&self, s: &str) -> &str {
        self.summary["steps"][s].as_str().unwrap_or("?")
    }

    fn kinds(&self, step: &str) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c["step"] == step)
            .map(|c| c["finding"]["kind"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    fn finding(&self, kind: &str) -> &Value {
        self.checks
            .iter()
            .map(|c| &c["finding"])
            .find(|f| f["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {:#?}", self.checks))
    }
}

fn doctor(device: &str, extra: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args([
            "doctor",
            "--device",
            device,
            "--password",
            PW,
            "--json",
            "--timeout",
            "5",
        ])
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let summary = lines
        .pop()
        .map(|v| v["summary"].clone())
        .unwrap_or_default();
    assert!(
        summary.is_object(),
        "no summary: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        checks: lines,
        summary,
        code: out.status.code().unwrap_or(-1),
    }
}

fn listen_args(port: u16) -> Vec<String> {
    vec![
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--watch".into(),
        "3".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn healthy_device_passes_every_step() {
    let port = free_port();
    let s = sim(&format!("http://127.0.0.1:{port}/alarm"), &[]);
    let mut args = listen_args(port);
    args.push("--try-write".into());
    let r = doctor(&s.url(), &strs(&args));
    assert_eq!(r.step("device"), "pass", "{:#?}", r.checks);
    assert_eq!(r.step("alarm_hosts"), "pass", "{:#?}", r.checks);
    assert_eq!(r.step("linkage"), "pass", "{:#?}", r.checks);
    assert_eq!(r.step("live"), "pass", "{:#?}", r.checks);
    assert_eq!(r.code, 0);
    assert!(r.kinds("device").contains(&"identity".to_string()));
    assert!(r.kinds("device").contains(&"config_writable".to_string()));
    let all = r.finding("all_pushed");
    assert!(all["events"].as_u64().unwrap() >= 3, "{all}");
    assert_eq!(r.finding("test_message")["test"]["result"], "arrived");
}

#[test]
fn events_not_linked_to_the_center_are_named_and_never_arrive() {
    let port = free_port();
    let s = sim(
        &format!("http://127.0.0.1:{port}/alarm"),
        &["--unlinked", "VMD,linedetection,fielddetection"],
    );
    let r = doctor(&s.url(), &strs(&listen_args(port)));
    assert_eq!(r.step("linkage"), "fail", "{:#?}", r.checks);
    let nl = r.finding("not_linked");
    assert_eq!(nl["none_linked"], true);
    assert_eq!(nl["triggers"].as_array().unwrap().len(), 3);
    assert_eq!(r.step("live"), "fail");
    let never = r.finding("never_pushed");
    assert!(never["events"].as_array().unwrap().len() >= 3, "{never}");
    assert!(!never["unlinked"].as_array().unwrap().is_empty(), "{never}");
    assert_eq!(r.code, 1);
}

#[test]
fn one_unlinked_type_is_generated_but_never_pushed() {
    let port = free_port();
    let s = sim(
        &format!("http://127.0.0.1:{port}/alarm"),
        &["--unlinked", "linedetection"],
    );
    let r = doctor(&s.url(), &strs(&listen_args(port)));
    // Other channel events are linked: the list alone cannot say linedetection is enabled...
    assert_eq!(r.step("linkage"), "cannot_tell", "{:#?}", r.checks);
    // ... the device's own stream can.
    assert_eq!(r.step("live"), "fail");
    let never = r.finding("never_pushed");
    assert!(never["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["event_type"] == "linedetection"));
    assert_eq!(never["unlinked"][0], "linedetection");
}

#[test]
fn slot_pointing_at_the_wrong_address() {
    let port = free_port();
    let s = sim(&format!("http://127.0.0.9:{port}/alarm"), &[]);
    let r = doctor(&s.url(), &strs(&listen_args(port)));
    assert_eq!(r.step("alarm_hosts"), "fail");
    assert!(
        r.kinds("alarm_hosts")
            .contains(&"wrong_address".to_string()),
        "{:#?}",
        r.checks
    );
    assert!(!r.kinds("alarm_hosts").contains(&"wrong_port".to_string()));
    assert_eq!(r.step("live"), "cannot_tell");
    r.finding("no_slot_to_listener");
}

#[test]
fn slot_with_the_wrong_port() {
    let port = free_port();
    let other = free_port();
    let s = sim(&format!("http://127.0.0.1:{other}/alarm"), &[]);
    let r = doctor(&s.url(), &strs(&listen_args(port)));
    assert_eq!(r.step("alarm_hosts"), "fail");
    let k = r.kinds("alarm_hosts");
    assert!(k.contains(&"wrong_port".to_string()), "{k:?}");
    assert!(k.contains(&"server_unreachable".to_string()), "{k:?}");
    assert!(!k.contains(&"wrong_address".to_string()), "{k:?}");
    assert_eq!(r.finding("wrong_port")["server"], port);
}

#[test]
fn slot_set_to_https_against_a_plain_http_server() {
    let port = free_port();
    let s = sim(
        &format!("http://127.0.0.1:{port}/alarm"),
        &["--host-protocol", "https"],
    );
    let r = doctor(&s.url(), &strs(&listen_args(port)));
    assert_eq!(r.step("alarm_hosts"), "fail");
    let m = r.finding("protocol_mismatch");
    assert_eq!(
        (m["slot"].as_str(), m["server"].as_str()),
        (Some("HTTPS"), Some("HTTP"))
    );
    assert_eq!(r.step("live"), "fail");
    r.finding("never_pushed");
}

#[test]
fn slot_sending_json_to_a_server_that_parses_xml() {
    let port = free_port();
    let s = sim(
        &format!("http://127.0.0.1:{port}/alarm"),
        &["--host-format", "json"],
    );
    let mut args = listen_args(port);
    args.extend(["--server-format".to_string(), "XML".to_string()]);
    let r = doctor(&s.url(), &strs(&args));
    assert_eq!(r.step("alarm_hosts"), "fail");
    let m = r.finding("format_mismatch");
    assert_eq!(
        (m["slot"].as_str(), m["server"].as_str()),
        (Some("JSON"), Some("XML"))
    );
    // The same slot against a server that takes JSON passes that check.
    let port2 = free_port();
    let s2 = sim(
        &format!("http://127.0.0.1:{port2}/alarm"),
        &["--host-format", "json"],
    );
    let mut args = listen_args(port2);
    args.extend(["--server-format".to_string(), "JSON".to_string()]);
    let r = doctor(&s2.url(), &strs(&args));
    assert_eq!(r.step("alarm_hosts"), "pass", "{:#?}", r.checks);
}

#[test]
fn account_without_configuration_permission_gets_403_named() {
    let port = free_port();
    let s = sim(
        &format!("http://127.0.0.1:{port}/alarm"),
        &["--forbid-config"],
    );
    let r = doctor(&s.url(), &strs(&listen_args(port)));
    assert_eq!(r.step("device"), "fail");
    assert!(r
        .kinds("device")
        .contains(&"credentials_accepted".to_string()));
    r.finding("config_forbidden");
    assert_eq!(r.step("linkage"), "fail");
    r.finding("triggers_forbidden");
}

#[test]
fn wrong_push_credentials_are_refused_by_the_server() {
    let port = free_port();
    let s = sim(
        &format!("http://127.0.0.1:{port}/alarm"),
        &[
            "--host-auth",
            "digest",
            "--host-user",
            "cam",
            "--host-password",
            "wrong",
        ],
    );
    let mut args = listen_args(port);
    args.extend(
        [
            "--listen-auth",
            "digest",
            "--listen-user",
            "cam",
            "--listen-password",
            "right",
        ]
        .map(String::from),
    );
    let r = doctor(&s.url(), &strs(&args));
    // From here only the scheme can be checked ...
    assert_eq!(r.finding("auth_unverified")["id"], "1");
    // ... the pushes show the credentials are wrong.
    assert_eq!(r.step("live"), "fail", "{:#?}", r.checks);
    let rej = r.finding("pushes_rejected");
    assert_eq!(rej["status"], 401);
    assert_eq!(rej["auth"], "wrong_credentials");
}

#[test]
fn slot_without_credentials_against_a_server_that_wants_them() {
    let port = free_port();
    let s = sim(&format!("http://127.0.0.1:{port}/alarm"), &[]);
    let mut args = listen_args(port);
    args.extend(
        [
            "--listen-auth",
            "basic",
            "--listen-user",
            "cam",
            "--listen-password",
            "right",
        ]
        .map(String::from),
    );
    let r = doctor(&s.url(), &strs(&args));
    assert_eq!(r.step("alarm_hosts"), "fail");
    r.finding("auth_missing");
    assert_eq!(r.finding("pushes_rejected")["auth"], "missing");
}

#[test]
fn late_pushes_behind_a_slow_server() {
    let port = free_port();
    let s = sim(
        &format!("http://127.0.0.1:{port}/alarm"),
        &["--kind", "xml"],
    );
    let mut args = listen_args(port);
    args.extend(["--listen-fault", "delay=700ms", "--late", "1"].map(String::from));
    let r = doctor(&s.url(), &strs(&args));
    assert_eq!(r.step("live"), "fail", "{:#?}", r.checks);
    let late = r.finding("late_pushes");
    assert!(
        late["pushes"][0]["late_ms"].as_u64().unwrap() > 1000,
        "{late}"
    );
}

#[test]
fn unreachable_device_stops_at_step_one() {
    let port = free_port();
    let r = doctor(&format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(r.step("device"), "fail");
    assert_eq!(r.kinds("device"), vec!["unreachable"]);
    assert_eq!(r.step("alarm_hosts"), "not_run");
    assert_eq!(r.code, 1);
}

#[test]
fn device_watch_lists_generated_events_and_counts_keepalives() {
    let port = free_port();
    // Linked or not, every generated event is on the stream.
    let s = sim(
        &format!("http://127.0.0.1:{port}/alarm"),
        &["--unlinked", "linedetection", "--heartbeat", "0.5"],
    );
    let out = Command::new(BIN)
        .args([
            "device",
            "watch",
            "--device",
            &s.url(),
            "--password",
            PW,
            "--json",
            "--duration",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows: Vec<&Value> = lines.iter().filter(|l| l.get("event").is_some()).collect();
    let types: Vec<&str> = rows
        .iter()
        .map(|r| r["event"]["event_type"].as_str().unwrap_or("?"))
        .collect();
    assert!(types.len() >= 6, "{types:?}");
    assert!(types.contains(&"linedetection"), "{types:?}");
    assert!(!types.contains(&"videoloss"), "{types:?}");
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["events"].as_u64(), Some(rows.len() as u64));
    assert!(summary["keepalives"].as_u64().unwrap() >= 2, "{summary}");
}

#[test]
fn slots_checked_against_your_own_server() {
    // The user's server (the project's listener, in-process), taking /alarm only.
    let srv = common::Srv::start(|o| o.path_prefix = Some("/alarm".into()));
    let port = srv.addr.port();
    let s = sim(&format!("http://127.0.0.1:{port}/events"), &[]);
    let server = format!("http://127.0.0.1:{port}/alarm");
    let r = doctor(&s.url(), &["--server", &server]);
    assert_eq!(r.step("alarm_hosts"), "fail", "{:#?}", r.checks);
    let k = r.kinds("alarm_hosts");
    assert!(k.contains(&"protocol_matches".to_string()), "{k:?}");
    assert!(!k.contains(&"wrong_address".to_string()), "{k:?}");
    let m = r.finding("path_mismatch");
    assert_eq!(
        (m["slot"].as_str(), m["server"].as_str()),
        (Some("/events"), Some("/alarm"))
    );
    assert_eq!(r.kinds("live"), vec!["live_not_run"]);
    // The same slot with the server's path passes.
    let s2 = sim(&format!("http://127.0.0.1:{port}/alarm"), &[]);
    let r = doctor(&s2.url(), &["--server", &server]);
    assert_eq!(r.step("alarm_hosts"), "pass", "{:#?}", r.checks);
}
