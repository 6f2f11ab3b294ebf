//! End to end over loopback: `simulate --serve-isapi` as the device `alarmscope doctor` talks
//! to (deviceInfo, triggers, the alertStream, 403 for an operator account), pushing to an
//! in-process listener, with and without `--auth`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use alarmscope::isapi::event::decode_event;
use alarmscope::listen::auth::{AuthCheck, AuthConfig, AuthScheme};
use alarmscope::listen::tls::{TlsOptions, TlsProblem, Transport};
use common::sim::{SimDevice as Sim, SIM_PASSWORD as PASSWORD};
use common::Srv;
use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};

/// Read one response head (and its body when it has a Content-Length) from `s`.
fn read_response(s: &mut TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = resp.parse(&buf) {
            let hs: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let code = resp.code.unwrap();
            let len = hs
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.trim().parse::<usize>().unwrap())
                .unwrap_or(0);
            let mut body = buf[n..].to_vec();
            while body.len() < len {
                let k = s.read(&mut chunk).unwrap();
                assert!(k > 0, "closed inside a body");
                body.extend_from_slice(&chunk[..k]);
            }
            return (code, hs, body);
        }
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "closed before a response head");
        buf.extend_from_slice(&chunk[..k]);
    }
}

/// An ISAPI call with digest authentication: unauthenticated first, then the challenge answered.
/// Returns the second answer's status and body, and the open stream (for the alertStream).
fn isapi(addr: SocketAddr, method: &str, path: &str) -> (u16, Vec<u8>, TcpStream) {
    let mut s = common::connect(addr);
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let (code, headers, _) = read_response(&mut s);
    assert_eq!(code, 401);
    let www = headers
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut prompt = WwwAuthenticateHeader::parse(&www).unwrap();
    let ctx = AuthContext::new_with_method(
        "admin",
        PASSWORD,
        path,
        None::<&[u8]>,
        HttpMethod::from(method.to_string()),
    );
    let answer = prompt.respond(&ctx).unwrap().to_string();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {answer}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    if path.ends_with("alertStream") {
        return (0, Vec::new(), s);
    }
    let (code, _, body) = read_response(&mut s);
    (code, body, s)
}

/// The text of element `name` in `doc` (first occurrence).
fn element<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&format!("</{name}>"))?;
    Some(&doc[start..start + end])
}

/// Read the alertStream for `secs` and return each part's (Content-Type, body).
fn alert_stream(addr: SocketAddr, secs: f64) -> Vec<(String, Vec<u8>)> {
    let (_, _, mut s) = isapi(addr, "GET", "/ISAPI/Event/notification/alertStream");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut raw = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut chunk = [0u8; 8192];
    while Instant::now() < end {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("no stream head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let ct = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
        .unwrap();
    assert!(ct.contains("multipart/mixed; boundary=boundary"), "{ct}");
    // Parts: "--boundary" line, headers, blank line, Content-Length bytes.
    let mut parts = Vec::new();
    let mut rest = body.as_bytes();
    while let Some(i) = find(rest, b"--boundary\r\n") {
        rest = &rest[i + 12..];
        let Some(h) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let heads = String::from_utf8_lossy(&rest[..h]).into_owned();
        let len: usize = heads
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let ct = heads
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .unwrap()
            .to_string();
        if rest.len() < h + 4 + len {
            break; // cut by the end of the read
        }
        parts.push((ct, rest[h + 4..h + 4 + len].to_vec()));
        rest = &rest[h + 4 + len..];
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn device_info_and_triggers_say_who_and_what_is_linked() {
    let sim = Sim::start(&[
        "--unlinked",
        "linedetection",
        "--channels",
        "2",
        "--to",
        "http://127.0.0.1:9/alarm",
        "--generate-every",
        "60",
    ]);
    let (code, body, _) = isapi(sim.isapi, "GET", "/ISAPI/System/deviceInfo");
    assert_eq!(code, 200);
    let info = String::from_utf8(body).unwrap();
    let model = element(&info, "model").unwrap();
    let serial = element(&info, "serialNumber").unwrap();
    assert!(serial.starts_with(model), "{serial} / {model}");
    assert_eq!(element(&info, "macAddress").unwrap().len(), 17);
    assert!(element(&info, "firmwareVersion").unwrap().starts_with('V'));
    assert_eq!(element(&info, "deviceType"), Some("IPCamera"));

    let (code, body, _) = isapi(sim.isapi, "GET", "/ISAPI/Event/triggers");
    assert_eq!(code, 200);
    let list = String::from_utf8(body).unwrap();
    let triggers: Vec<&str> = list.split("<EventTrigger>").skip(1).collect();
    let center = |id: &str| {
        let t = triggers
            .iter()
            .find(|t| element(t, "id") == Some(id))
            .unwrap_or_else(|| panic!("no trigger {id}"));
        t.contains("<notificationMethod>center</notificationMethod>")
    };
    for ch in ["1", "2"] {
        assert!(center(&format!("VMD-{ch}")));
        assert!(center(&format!("fielddetection-{ch}")));
        assert!(!center(&format!("linedetection-{ch}")));
    }
    // One trigger on its own, as doctor reads it per event type and channel.
    let (code, body, _) = isapi(sim.isapi, "GET", "/ISAPI/Event/triggers/linedetection-2");
    assert_eq!(code, 200);
    let one = String::from_utf8(body).unwrap();
    assert_eq!(element(&one, "videoInputChannelID"), Some("2"));
    assert!(!one.contains("<notificationMethod>center</notificationMethod>"));
}

#[test]
fn forbid_config_refuses_configuration_not_identity() {
    let sim = Sim::start(&[
        "--forbid-config",
        "--to",
        "http://127.0.0.1:9/alarm",
        "--generate-every",
        "60",
    ]);
    for path in [
        "/ISAPI/Event/notification/httpHosts",
        "/ISAPI/Event/triggers",
    ] {
        let (code, body, _) = isapi(sim.isapi, "GET", path);
        assert_eq!(code, 403, "{path}");
        let st = alarmscope::device::hosts::parse_response_status(&body).unwrap();
        assert_eq!(st.sub_status_code, "lowPrivilege");
    }
    let (code, _, _) = isapi(sim.isapi, "GET", "/ISAPI/System/deviceInfo");
    assert_eq!(code, 200);
}

#[test]
fn unlinked_events_are_on_the_stream_but_never_pushed() {
    let srv = Srv::start(|o| o.store = None);
    let to = format!("http://{}/alarm", srv.addr);
    let sim = Sim::start(&[
        "--to",
        &to,
        "--unlinked",
        "linedetection",
        "--generate-every",
        "0.25",
        "--heartbeat",
        "1",
    ]);
    let parts = alert_stream(sim.isapi, 3.0);
    // The last event read may be on its way to the listener still.
    thread::sleep(Duration::from_millis(500));
    drop(sim);
    let events: Vec<_> = parts
        .iter()
        .map(|(ct, b)| decode_event(b, Some(ct)).unwrap())
        .collect();
    let of = |ty: &str| {
        events
            .iter()
            .filter(|e| e.event_type.as_deref() == Some(ty))
            .collect::<Vec<_>>()
    };
    let beats = of("videoloss");
    assert!(!beats.is_empty(), "no keep-alive in 3 s at --heartbeat 1");
    assert!(beats
        .iter()
        .all(|e| e.event_state.as_deref() == Some("inactive")));
    let lines = of("linedetection");
    assert!(
        lines.len() >= 2,
        "{} linedetection on the stream",
        lines.len()
    );
    assert!(of("VMD").len() >= 2 && of("fielddetection").len() >= 2);

    // What reached the listener: every linked event the stream showed, no linedetection.
    let mut stop = srv;
    let (_, _, conns) = stop.stop_with_report();
    let pushed: Vec<(String, String)> = conns
        .iter()
        .flat_map(|c| &c.exchanges)
        .filter_map(|x| x.event.as_ref())
        .map(|e| {
            (
                e.event_type.clone().unwrap_or_default(),
                e.date_time.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(!pushed.is_empty(), "nothing pushed");
    assert!(
        pushed.iter().all(|(t, _)| t != "linedetection"),
        "{pushed:?}"
    );
    // The stream reports the address the pushes come from.
    let peers: Vec<String> = conns
        .iter()
        .map(|c| c.client.split(':').next().unwrap_or("").to_string())
        .collect();
    for e in of("VMD") {
        assert!(
            peers.contains(e.device_ip.as_ref().unwrap()),
            "{:?}",
            e.device_ip
        );
    }
    // Each linked event seen on the stream arrived as a push with the same type and time.
    for e in of("VMD").iter().chain(of("fielddetection").iter()) {
        let key = (
            e.event_type.clone().unwrap_or_default(),
            e.date_time.clone().unwrap_or_default(),
        );
        assert!(
            pushed.contains(&key),
            "{key:?} not pushed; pushed {pushed:?}"
        );
    }
}

fn digest_listener() -> Srv {
    Srv::start(|o| {
        o.store = Some(o.store.clone().unwrap());
        o.auth = Some(AuthConfig {
            scheme: AuthScheme::Digest,
            user: "alarm".into(),
            password: "p4ss".into(),
            realm: "alarmscope".into(),
        });
    })
}

fn push_twice(srv: &Srv, auth: &[&str]) -> serde_json::Value {
    let to = format!("http://{}/alarm", srv.addr);
    let mut sim = Sim::start(
        &[
            &[
                "--to",
                &to,
                "--count",
                "2",
                "--rate",
                "20",
                "--retries",
                "0",
            ][..],
            auth,
        ]
        .concat(),
    );
    sim.summary()
}

#[test]
fn listen_auth_digest_right_wrong_and_no_credentials() {
    let srv = digest_listener();
    let right = [
        "--host-auth",
        "digest",
        "--host-user",
        "alarm",
        "--host-password",
        "p4ss",
    ];
    let s = push_twice(&srv, &right);
    assert_eq!(s["answered_200"], 2, "{s}");
    // Each push: an unauthenticated try answered 401 with a challenge, then the answer.
    let ev = srv.events(4);
    let checks: Vec<_> = ev.iter().map(|e| e.exchange.auth).collect();
    assert_eq!(
        checks
            .iter()
            .filter(|c| **c == Some(AuthCheck::Missing))
            .count(),
        2
    );
    for e in &ev {
        let status = e.exchange.response.as_ref().unwrap().status;
        match e.exchange.auth {
            Some(AuthCheck::Accepted) => {
                assert_eq!(status, 200);
                assert!(e.stored.is_some(), "accepted event not stored");
            }
            Some(AuthCheck::Missing) => {
                assert_eq!(status, 401);
                assert!(e.stored.is_none(), "refused event stored");
                let www = e
                    .exchange
                    .response
                    .as_ref()
                    .unwrap()
                    .headers
                    .iter()
                    .find(|(k, _)| k == "WWW-Authenticate")
                    .map(|(_, v)| v.clone())
                    .unwrap();
                assert!(www.starts_with("Digest ") && www.contains("qop=\"auth\""));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let wrong = [
        "--host-auth",
        "digest",
        "--host-user",
        "alarm",
        "--host-password",
        "nope",
    ];
    let s = push_twice(&srv, &wrong);
    assert_eq!(s["answered_200"], 0, "{s}");
    assert_eq!(s["other_status"]["401"], 2, "{s}");
    let ev = srv.events(4);
    assert_eq!(
        ev.iter()
            .filter(|e| e.exchange.auth == Some(AuthCheck::WrongCredentials))
            .count(),
        2
    );
    assert!(ev.iter().all(|e| e.stored.is_none()));
    // The --text line names the refusal.
    let wrong_line = ev
        .iter()
        .find(|e| e.exchange.auth == Some(AuthCheck::WrongCredentials))
        .map(alarmscope::listen::text_line)
        .unwrap();
    let want = format!("[auth: {}]", AuthCheck::WrongCredentials);
    assert!(wrong_line.contains(&want), "{wrong_line}");

    let s = push_twice(&srv, &[]);
    assert_eq!(s["other_status"]["401"], 2, "{s}");
    let ev = srv.events(2);
    assert!(ev
        .iter()
        .all(|e| e.exchange.auth == Some(AuthCheck::Missing) && e.stored.is_none()));

    let basic = [
        "--host-auth",
        "basic",
        "--host-user",
        "alarm",
        "--host-password",
        "p4ss",
    ];
    push_twice(&srv, &basic);
    let ev = srv.events(2);
    assert!(ev
        .iter()
        .all(|e| e.exchange.auth == Some(AuthCheck::WrongScheme)));
}

#[test]
fn slot_protocol_and_format_reach_the_listener_as_configured() {
    let srv = Srv::start(|o| o.store = None);
    let to = format!("http://{}/alarm", srv.addr);
    // HTTPS slot against a plain-HTTP server: a TLS handshake arrives, not a request.
    let mut sim = Sim::start(&[
        "--to",
        &to,
        "--host-protocol",
        "https",
        "--count",
        "1",
        "--retries",
        "0",
    ]);
    let s = sim.summary();
    assert_eq!(s["closed_without_answer"], 1, "{s}");
    // The listener names the mismatch (it used to be a bare 400 exchange).
    let p = srv.problems(1);
    assert_eq!(p[0].tls_problem, TlsProblem::TlsToPlainPort);
    assert!(p[0].explanation.contains("the device uses HTTPS"));
    // The same slot against a listener speaking TLS: delivered, over TLS.
    let tls_srv = Srv::start(|o| {
        o.store = None;
        o.tls = Some(TlsOptions::default());
    });
    let mut sim = Sim::start(&[
        "--to",
        &format!("http://{}/alarm", tls_srv.addr),
        "--host-protocol",
        "https",
        "--count",
        "1",
    ]);
    assert_eq!(sim.summary()["answered_200"], 1);
    let ev = tls_srv.events(1);
    assert_eq!(ev[0].transport, Transport::Tls);
    assert!(ev[0].exchange.event.is_some());
    // JSON slot: camera events arrive as JSON.
    let mut sim = Sim::start(&[
        "--to",
        &to,
        "--host-format",
        "json",
        "--count",
        "3",
        "--rate",
        "20",
    ]);
    assert_eq!(sim.summary()["answered_200"], 3);
    for e in srv.events(3) {
        assert_eq!(e.exchange.event.as_ref().unwrap().format, "json");
    }
}

#[test]
fn held_pushes_arrive_late_while_the_stream_shows_events_on_time() {
    // Each answer takes 1 s: a device generating 4 events a second falls behind.
    let srv = Srv::start(|o| {
        o.store = None;
        o.faults = vec!["delay=1s".parse().unwrap()];
    });
    let to = format!("http://{}/alarm", srv.addr);
    let sim = Sim::start(&["--to", &to, "--generate-every", "0.25", "--timeout", "5"]);
    let parts = alert_stream(sim.isapi, 3.0);
    drop(sim);
    let on_stream: Vec<String> = parts
        .iter()
        .filter_map(|(ct, b)| decode_event(b, Some(ct)).ok())
        .filter(|e| e.event_type.as_deref() != Some("videoloss"))
        .filter_map(|e| e.date_time)
        .collect();
    let mut srv = srv;
    let (_, _, conns) = srv.stop_with_report();
    let mut pushed: Vec<String> = conns
        .iter()
        .flat_map(|c| &c.exchanges)
        .filter_map(|x| x.event.as_ref()?.date_time.clone())
        .collect();
    pushed.sort();
    pushed.dedup();
    // 12 generated in 3 s; a loaded machine may fire the generator's timer late.
    assert!(
        on_stream.len() >= 8,
        "{} events on the stream",
        on_stream.len()
    );
    assert!(
        pushed.len() <= 4 && !pushed.is_empty(),
        "{} pushes in 3 s at 1 s each",
        pushed.len()
    );
    // Every push is an event the stream showed when it happened; the rest are held. Events made
    // before the subscription reached the device (the first push among them) never were on the
    // stream, so only those after the first event the stream showed are checked.
    let first = on_stream.iter().min().expect("events on the stream");
    let later: Vec<&String> = pushed.iter().filter(|p| *p > first).collect();
    for p in &later {
        assert!(on_stream.contains(p), "{p} not on the stream");
    }
    // The pushes lag: the newest event pushed is older than the newest the stream showed.
    assert!(
        pushed.iter().max() < on_stream.iter().max(),
        "pushed {pushed:?}, stream {on_stream:?}"
    );
}

#[test]
fn alert_stream_is_dropped_after_the_limit() {
    let sim = Sim::start(&[
        "--to",
        "http://127.0.0.1:9/alarm",
        "--generate-every",
        "60",
        "--stream-drop-after",
        "0.5",
    ]);
    let (_, _, mut s) = isapi(sim.isapi, "GET", "/ISAPI/Event/notification/alertStream");
    let t = Instant::now();
    let mut rest = Vec::new();
    // read_to_end returns at the device's close (the read timeout is 10 s).
    s.read_to_end(&mut rest).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 200 OK"));
    // And the next subscription works.
    let parts = alert_stream(sim.isapi, 0.3);
    assert!(parts.is_empty());
}

#[test]
fn json_device_streams_json_parts() {
    let sim = Sim::start(&[
        "--isapi-format",
        "json",
        "--to",
        "http://127.0.0.1:9/alarm",
        "--generate-every",
        "0.3",
        "--heartbeat",
        "0.5",
    ]);
    let parts = alert_stream(sim.isapi, 1.5);
    assert!(parts.len() >= 3, "{} parts", parts.len());
    let mut types = Vec::new();
    for (ct, body) in &parts {
        let e = decode_event(body, Some(ct)).unwrap();
        assert_eq!(e.format, "json", "{ct}");
        types.push(e.event_type.unwrap_or_default());
    }
    assert!(types.iter().any(|t| t == "videoloss"), "{types:?}");
    assert!(types.iter().any(|t| t != "videoloss"), "{types:?}");
}

/// `device set` on a slot set to HTTPS that only changes the address says the protocol stays
/// HTTPS and what the server must speak; changing the protocol says what it is now.
#[test]
fn device_set_names_the_protocol_the_slot_keeps() {
    let sim = Sim::start(&["--host-protocol", "https"]);
    let dev = format!("http://{}", sim.isapi);
    let set = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_alarmscope"))
            .args(["device", "set", "--device", &dev, "--id", "1"])
            .args(extra)
            .args(["--user", "admin", "--password", PASSWORD])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = set(&["--address", "127.0.0.1", "--port", "8443"]);
    assert!(
        out.contains("the slot's protocol stays HTTPS: the server at 127.0.0.1:8443 must speak TLS (alarmscope listen --tls)"),
        "{out}"
    );
    assert!(out.contains("add --protocol HTTP to change it"), "{out}");
    let out = set(&["--protocol", "http", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["protocol_note"]["protocol"], "http");
    assert_eq!(v["protocol_note"]["changed"], true);
    assert_eq!(v["protocol_note"]["server"], "127.0.0.1:8443");
}
