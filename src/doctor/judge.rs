//! Pure judgments: documents and probe results in, findings out. No sockets, files or clocks
//! (times come in as milliseconds on one clock chosen by the shell).

use super::check::{EventRef, Finding, LatePush, Scheme, TriggerRef};
use crate::device::hosts::HostSlot;
use crate::device::triggers::EventTrigger;
use crate::model::AuthCheck;

/// What the server the slots should point at is known to be (from `--listen` or `--server`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// "host:port" as printed.
    pub display: String,
    pub port: u16,
    pub scheme: Scheme,
    /// URL path the server takes (None: any).
    pub path: Option<String>,
    /// "XML" or "JSON" when the server takes only one.
    pub format: Option<String>,
}

/// What doctor found at a slot's address and port, seen from where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Err: why no TCP connection could be made (refused, timed out, no route).
    pub connect: Result<(), Unreachable>,
    /// What the port speaks; None when neither plain HTTP nor TLS answered.
    pub speaks: Option<Scheme>,
    /// Why neither answered, when so.
    pub detail: String,
    /// Scheme of the server's `WWW-Authenticate` challenge ("Digest", "Basic"), if it asked.
    pub challenge: Option<String>,
}

/// Why no TCP connection to a slot's server could be made: typed so the judgement and tests
/// tell a refusal from a timeout by kind; the text is what the finding shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    #[error("{host} does not resolve")]
    NoResolve { host: String },
    #[error("connection refused")]
    Refused,
    #[error("no answer within {secs} s")]
    NoAnswer { secs: u64 },
    /// Any other connect error, as the OS words it.
    #[error("{message}")]
    Io {
        kind: std::io::ErrorKind,
        message: String,
    },
}

impl Probe {
    /// No TCP connection could be made.
    pub fn unreachable(detail: Unreachable) -> Probe {
        Probe {
            connect: Err(detail),
            speaks: None,
            detail: String::new(),
            challenge: None,
        }
    }
}

/// The slot's protocolType.
pub fn slot_scheme(s: &HostSlot) -> Scheme {
    if s.protocol.eq_ignore_ascii_case("HTTPS") {
        Scheme::Https
    } else {
        Scheme::Http
    }
}

/// Where the slot pushes, as a URL.
pub fn slot_target(s: &HostSlot) -> String {
    let host = s.address();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!(
        "{}://{host}:{}{}",
        slot_scheme(s).to_string().to_ascii_lowercase(),
        s.port,
        s.url
    )
}

/// Which authentication the slot sends: "none", "basic" or "digest".
fn slot_auth(s: &HostSlot) -> &'static str {
    let a = s.auth.to_ascii_lowercase();
    if a.is_empty() || a == "none" {
        "none"
    } else if a.contains("digest") {
        "digest"
    } else {
        // "basic", "base64" (a basic variant seen on some firmware).
        "basic"
    }
}

/// Judge one slot in use. `address_is_server`: whether the slot's address is the expected
/// server's (None when no server is known); `probe`: what was found there (None: not probed).
pub fn judge_slot(
    slot: &HostSlot,
    expected: Option<&Expected>,
    address_is_server: Option<bool>,
    probe: Option<&Probe>,
) -> Vec<Finding> {
    let id = slot.id.clone();
    let mut out = vec![Finding::SlotInUse {
        id: id.clone(),
        target: slot_target(slot),
        format: if slot.format.is_empty() {
            "XML".into()
        } else {
            slot.format.to_ascii_uppercase()
        },
        auth: if slot.auth.is_empty() {
            "none".into()
        } else {
            slot.auth.clone()
        },
    }];
    if let Some(e) = expected {
        if address_is_server == Some(false) {
            out.push(Finding::WrongAddress {
                id: id.clone(),
                slot: slot.address().to_string(),
                server: e.display.clone(),
            });
        }
        if slot.port.trim().parse::<u16>().ok() != Some(e.port) {
            out.push(Finding::WrongPort {
                id: id.clone(),
                slot: slot.port.clone(),
                server: e.port,
            });
        }
    }
    if let Some(p) = probe {
        match &p.connect {
            Err(detail) => out.push(Finding::ServerUnreachable {
                id: id.clone(),
                address: format!("{}:{}", slot.address(), slot.port),
                detail: detail.to_string(),
            }),
            Ok(()) => {
                match p.speaks {
                    Some(s) if s != slot_scheme(slot) => out.push(Finding::ProtocolMismatch {
                        id: id.clone(),
                        slot: slot_scheme(slot),
                        server: s,
                    }),
                    Some(s) => out.push(Finding::ProtocolMatches {
                        id: id.clone(),
                        protocol: s,
                    }),
                    None => out.push(Finding::NoHttp {
                        id: id.clone(),
                        address: format!("{}:{}", slot.address(), slot.port),
                        detail: p.detail.clone(),
                    }),
                }
                if p.speaks.is_some() {
                    out.push(judge_auth(slot, p.challenge.as_deref()));
                }
            }
        }
    }
    if let Some(e) = expected {
        if let Some(path) = &e.path {
            if !slot.url.starts_with(path.as_str()) {
                out.push(Finding::PathMismatch {
                    id: id.clone(),
                    slot: slot.url.clone(),
                    server: path.clone(),
                });
            }
        }
        let fmt = if slot.format.is_empty() {
            "XML".to_string()
        } else {
            slot.format.to_ascii_uppercase()
        };
        match &e.format {
            Some(f) if !f.eq_ignore_ascii_case(&fmt) => out.push(Finding::FormatMismatch {
                id,
                slot: fmt,
                server: f.to_ascii_uppercase(),
            }),
            _ => out.push(Finding::FormatAccepted { id, format: fmt }),
        }
    }
    out
}

fn judge_auth(slot: &HostSlot, challenge: Option<&str>) -> Finding {
    let id = slot.id.clone();
    let sends = slot_auth(slot);
    match challenge {
        None => Finding::AuthNotRequired {
            id,
            slot: sends.to_string(),
        },
        Some(c) => {
            let wants = if c.to_ascii_lowercase().starts_with("digest") {
                "digest"
            } else if c.to_ascii_lowercase().starts_with("basic") {
                "basic"
            } else {
                "other"
            };
            if sends == "none" {
                Finding::AuthMissing {
                    id,
                    server: c.to_string(),
                }
            } else if sends != wants {
                Finding::AuthSchemeMismatch {
                    id,
                    slot: slot.auth.clone(),
                    server: c.to_string(),
                }
            } else {
                Finding::AuthUnverified {
                    id,
                    scheme: c.to_string(),
                }
            }
        }
    }
}

/// The slots to judge against a known server: the ones pointing at it (address and port),
/// else every slot in use (then each shows what is wrong).
pub fn slots_to_judge<'a>(
    in_use: &[&'a HostSlot],
    expected: Option<&Expected>,
    is_server: &dyn Fn(&HostSlot) -> bool,
) -> Vec<&'a HostSlot> {
    let Some(e) = expected else {
        return in_use.to_vec();
    };
    let hits: Vec<&HostSlot> = in_use
        .iter()
        .copied()
        .filter(|s| is_server(s) && s.port.trim().parse::<u16>().ok() == Some(e.port))
        .collect();
    if hits.is_empty() {
        in_use.to_vec()
    } else {
        hits
    }
}

/// Smart events many cameras expose only per trigger (`/ISAPI/Event/triggers/<type>-<channel>`),
/// missing from the list (seen on DS-2CD2xx6G2 cameras and PTZ domes).
pub const PER_TYPE_EVENTS: [&str; 5] = [
    "linedetection",
    "fielddetection",
    "regionentrance",
    "regionexiting",
    "scenechangedetection",
];

/// Video channels asked per trigger at most (a 32-channel recorder would need 160 calls).
pub const PER_TYPE_CHANNELS: usize = 8;

/// Trigger ids to ask one by one: each smart event type on each video channel of the list
/// (first [`PER_TYPE_CHANNELS`]) that the list does not already hold.
pub fn per_type_ids(list: &[EventTrigger]) -> Vec<String> {
    let mut channels: Vec<&str> = Vec::new();
    for t in list {
        if let Some(c) = t.channel.as_deref() {
            // Alarm inputs are not video channels.
            if !t.event_type.eq_ignore_ascii_case("IO") && !channels.contains(&c) {
                channels.push(c);
            }
        }
    }
    let mut out = Vec::new();
    for c in channels.into_iter().take(PER_TYPE_CHANNELS) {
        for ty in PER_TYPE_EVENTS {
            let known = list
                .iter()
                .any(|t| t.event_type.eq_ignore_ascii_case(ty) && t.channel.as_deref() == Some(c));
            if !known {
                out.push(format!("{ty}-{c}"));
            }
        }
    }
    out
}

fn tref(t: &EventTrigger) -> TriggerRef {
    TriggerRef {
        id: t.id.clone(),
        event_type: t.event_type.clone(),
        channel: t.channel.clone(),
    }
}

/// Step 3 from the device's triggers.
pub fn judge_triggers(triggers: &[EventTrigger]) -> Vec<Finding> {
    if triggers.is_empty() {
        return vec![Finding::NoTriggers];
    }
    let linked: Vec<TriggerRef> = triggers
        .iter()
        .filter(|t| t.notifies_center())
        .map(tref)
        .collect();
    let not: Vec<TriggerRef> = triggers
        .iter()
        .filter(|t| !t.notifies_center())
        .map(tref)
        .collect();
    let mut out = Vec::new();
    // Channel events are what users wait for; device-wide exceptions (diskfull, ipconflict)
    // being linked does not make a camera's events arrive.
    let any_channel = triggers.iter().any(|t| t.channel.is_some());
    let none_linked = !triggers
        .iter()
        .any(|t| t.notifies_center() && (t.channel.is_some() || !any_channel));
    if !linked.is_empty() {
        out.push(Finding::Linked { triggers: linked });
    }
    if !not.is_empty() {
        out.push(Finding::NotLinked {
            triggers: not,
            none_linked,
        });
    }
    out
}

/// Event types that no trigger links to the center (a type linked on some channel is not
/// unlinked as a whole), in first-seen order.
pub fn unlinked_types(triggers: &[EventTrigger]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in triggers.iter().filter(|t| !t.notifies_center()) {
        let linked_somewhere = triggers
            .iter()
            .any(|o| o.notifies_center() && o.event_type.eq_ignore_ascii_case(&t.event_type));
        if !linked_somewhere && !out.iter().any(|u| u.eq_ignore_ascii_case(&t.event_type)) {
            out.push(t.event_type.clone());
        }
    }
    out
}

/// An event seen during the live step, on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub event: EventRef,
    pub state: Option<String>,
    /// Milliseconds on the shell's clock when it arrived here.
    pub at_ms: u64,
}

/// A push that arrived at doctor's listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub seen: Seen,
    /// The listener's answer (200 unless it refused the push).
    pub status: u16,
    /// What the listener's credential check found (`--listen-auth`).
    pub auth: Option<AuthCheck>,
}

/// How far apart (ms) a push and an event without matching dateTimes may be to be paired.
const PAIR_WINDOW_MS: u64 = 60_000;

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => true,
    }
}

/// The push paired with `g` among those `usable`: same type, channel and dateTime; or, when
/// either lacks a dateTime, the nearest in time of the same type, channel and state.
fn pair(g: &Seen, pushes: &[Pushed], usable: &dyn Fn(usize) -> bool) -> Option<usize> {
    let kin = |p: &Pushed| {
        p.seen
            .event
            .event_type
            .eq_ignore_ascii_case(&g.event.event_type)
            && same(&p.seen.event.channel, &g.event.channel)
    };
    let exact = pushes.iter().enumerate().position(|(i, p)| {
        usable(i)
            && kin(p)
            && p.seen.event.date_time.is_some()
            && p.seen.event.date_time == g.event.date_time
    });
    exact.or_else(|| {
        pushes
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                usable(*i)
                    && kin(p)
                    && same(&p.seen.state, &g.state)
                    && (p.seen.event.date_time.is_none() || g.event.date_time.is_none())
                    && p.seen.at_ms.abs_diff(g.at_ms) <= PAIR_WINDOW_MS
            })
            .min_by_key(|(_, p)| p.seen.at_ms.abs_diff(g.at_ms))
            .map(|(i, _)| i)
    })
}

/// Pushes that stand for no generated event (same type, channel and dateTime): the device's
/// test message, or events from before the watch. Indexes into `pushes`.
pub fn unpaired_pushes(generated: &[Seen], pushes: &[Pushed]) -> Vec<usize> {
    let mut used = vec![false; pushes.len()];
    for g in generated {
        let hit = pushes.iter().enumerate().position(|(i, p)| {
            !used.get(i).copied().unwrap_or(true)
                && p.seen
                    .event
                    .event_type
                    .eq_ignore_ascii_case(&g.event.event_type)
                && same(&p.seen.event.channel, &g.event.channel)
                && p.seen.event.date_time == g.event.date_time
        });
        if let Some(u) = hit.and_then(|i| used.get_mut(i)) {
            *u = true;
        }
    }
    used.iter()
        .enumerate()
        .filter(|(_, u)| !**u)
        .map(|(i, _)| i)
        .collect()
}

/// Step 4: every generated event against the pushes that arrived. Each generated event is
/// paired with an accepted push of it (see [`pair`]); failing that, with a refused one (the
/// device sent it, the server refused it: the digest challenge round's first request is such
/// a refusal, so accepted pushes are preferred). `unlinked`: event types whose triggers do not
/// notify the center (step 3).
pub fn compare(
    generated: &[Seen],
    pushes: &[Pushed],
    late_limit_ms: u64,
    keepalives: u64,
    watch_secs: u64,
    unlinked: &[String],
) -> Vec<Finding> {
    let mut used = vec![false; pushes.len()];
    let mut never = Vec::new();
    let mut late = Vec::new();
    let mut refused: Vec<&Pushed> = Vec::new();
    let mut max_late = 0u64;
    for g in generated {
        let free = |i: usize| !used.get(i).copied().unwrap_or(true);
        let accepted = pair(g, pushes, &|i| {
            free(i) && pushes.get(i).is_some_and(|p| p.status == 200)
        });
        let Some(i) = accepted.or_else(|| pair(g, pushes, &free)) else {
            never.push(g.event.clone());
            continue;
        };
        if let Some(u) = used.get_mut(i) {
            *u = true;
        }
        let Some(p) = pushes.get(i) else { continue };
        if p.status != 200 {
            refused.push(p);
            continue;
        }
        let lateness = p.seen.at_ms.saturating_sub(g.at_ms);
        max_late = max_late.max(lateness);
        if lateness > late_limit_ms {
            late.push(LatePush {
                event: g.event.clone(),
                late_ms: lateness,
            });
        }
    }
    let mut out = Vec::new();
    if generated.is_empty() {
        out.push(Finding::NothingGenerated {
            secs: watch_secs,
            keepalives,
        });
        return out;
    }
    if let Some(first) = refused.first() {
        // A digest exchange starts with a request without credentials (refused as "missing"):
        // what the device sent when challenged is the telling refusal.
        let telling = pushes
            .iter()
            .filter(|p| p.status != 200)
            .find(|p| p.auth.is_some_and(|a| a != AuthCheck::Missing))
            .unwrap_or(first);
        out.push(Finding::PushesRejected {
            count: refused.len(),
            status: telling.status,
            auth: telling.auth,
        });
    }
    if !never.is_empty() {
        let mut types: Vec<String> = Vec::new();
        for e in &never {
            if unlinked
                .iter()
                .any(|u| u.eq_ignore_ascii_case(&e.event_type))
                && !types.iter().any(|t| t.eq_ignore_ascii_case(&e.event_type))
            {
                types.push(e.event_type.clone());
            }
        }
        out.push(Finding::NeverPushed {
            events: never.clone(),
            generated: generated.len(),
            unlinked: types,
        });
    }
    if !late.is_empty() {
        out.push(Finding::LatePushes {
            pushes: late,
            limit_ms: late_limit_ms,
        });
    }
    if out.is_empty() {
        out.push(Finding::AllPushed {
            events: generated.len(),
            max_late_ms: max_late,
            keepalives,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check::Outcome;

    fn slot(protocol: &str, addr: &str, port: &str, auth: &str, format: &str) -> HostSlot {
        HostSlot {
            id: "1".into(),
            url: "/alarm".into(),
            protocol: protocol.into(),
            format: format.into(),
            addressing: "ipaddress".into(),
            ip_address: addr.into(),
            port: port.into(),
            auth: auth.into(),
            ..Default::default()
        }
    }

    fn http_probe(challenge: Option<&str>) -> Probe {
        Probe {
            connect: Ok(()),
            speaks: Some(Scheme::Http),
            detail: String::new(),
            challenge: challenge.map(str::to_string),
        }
    }

    fn kinds(f: &[Finding]) -> Vec<String> {
        f.iter()
            .map(|x| {
                serde_json::to_value(x).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn server() -> Expected {
        Expected {
            display: "192.0.2.10:8080".into(),
            port: 8080,
            scheme: Scheme::Http,
            path: Some("/alarm".into()),
            format: Some("XML".into()),
        }
    }

    #[test]
    fn a_healthy_slot_passes_every_check() {
        let s = slot("HTTP", "192.0.2.10", "8080", "none", "XML");
        let f = judge_slot(&s, Some(&server()), Some(true), Some(&http_probe(None)));
        assert_eq!(
            kinds(&f),
            vec![
                "slot_in_use",
                "protocol_matches",
                "auth_not_required",
                "format_accepted"
            ]
        );
        assert!(f.iter().all(|x| x.outcome() == Outcome::Pass));
    }

    #[test]
    fn each_slot_mistake_is_named() {
        let e = server();
        let s = slot("HTTPS", "192.0.2.11", "80", "none", "JSON");
        let refused = Probe::unreachable(Unreachable::Refused);
        let f = judge_slot(&s, Some(&e), Some(false), Some(&refused));
        assert_eq!(
            kinds(&f),
            vec![
                "slot_in_use",
                "wrong_address",
                "wrong_port",
                "server_unreachable",
                "format_mismatch"
            ]
        );
        let s = slot("HTTPS", "192.0.2.10", "8080", "none", "XML");
        let f = judge_slot(&s, Some(&e), Some(true), Some(&http_probe(Some("Digest"))));
        assert!(f.contains(&Finding::ProtocolMismatch {
            id: "1".into(),
            slot: Scheme::Https,
            server: Scheme::Http
        }));
        assert!(f.contains(&Finding::AuthMissing {
            id: "1".into(),
            server: "Digest".into()
        }));
        let s = slot("HTTP", "192.0.2.10", "8080", "basic", "XML");
        let f = judge_slot(&s, None, None, Some(&http_probe(Some("Digest"))));
        assert_eq!(
            kinds(&f),
            vec!["slot_in_use", "protocol_matches", "auth_scheme_mismatch"]
        );
        let s = slot("HTTP", "192.0.2.10", "8080", "MD5digest", "XML");
        let f = judge_slot(&s, None, None, Some(&http_probe(Some("Digest"))));
        assert_eq!(f.last().map(Finding::outcome), Some(Outcome::CannotTell));
        let mut wrong_path = slot("HTTP", "192.0.2.10", "8080", "none", "XML");
        wrong_path.url = "/".into();
        let f = judge_slot(&wrong_path, Some(&e), Some(true), None);
        assert_eq!(
            kinds(&f),
            vec!["slot_in_use", "path_mismatch", "format_accepted"]
        );
    }

    #[test]
    fn only_slots_pointing_at_the_server_are_judged_when_one_does() {
        let a = slot("HTTP", "192.0.2.10", "8080", "none", "XML");
        let mut b = slot("HTTP", "192.0.2.99", "80", "none", "XML");
        b.id = "2".into();
        let is = |s: &HostSlot| s.address() == "192.0.2.10";
        let e = server();
        assert_eq!(slots_to_judge(&[&a, &b], Some(&e), &is).len(), 1);
        assert_eq!(slots_to_judge(&[&b], Some(&e), &is).len(), 1);
        assert_eq!(slots_to_judge(&[&a, &b], None, &is).len(), 2);
    }

    #[test]
    fn linkage() {
        let t = |id: &str, ty: &str, m: &[&str]| EventTrigger {
            id: id.into(),
            event_type: ty.into(),
            channel: Some("1".into()),
            methods: m.iter().map(|s| s.to_string()).collect(),
        };
        let f = judge_triggers(&[
            t("VMD-1", "VMD", &["center"]),
            t("linedetection-1", "linedetection", &["record"]),
        ]);
        assert_eq!(kinds(&f), vec!["linked", "not_linked"]);
        assert_eq!(f[1].outcome(), Outcome::CannotTell);
        let f = judge_triggers(&[t("VMD-1", "VMD", &[])]);
        assert_eq!(kinds(&f), vec!["not_linked"]);
        assert_eq!(f[0].outcome(), Outcome::Fail);
        // A linked disk-full exception does not make camera events arrive.
        let mut disk = t("diskfull", "diskfull", &["center"]);
        disk.channel = None;
        let f = judge_triggers(&[t("VMD-1", "VMD", &["record"]), disk.clone()]);
        assert_eq!(kinds(&f), vec!["linked", "not_linked"]);
        assert_eq!(f[1].outcome(), Outcome::Fail);
        // A device with device-wide triggers only.
        assert_eq!(kinds(&judge_triggers(&[disk.clone()])), vec!["linked"]);
        let mut vmd2 = t("VMD-2", "VMD", &["center"]);
        vmd2.channel = Some("2".into());
        let list = [
            t("VMD-1", "VMD", &[]),
            vmd2,
            t("linedetection-1", "linedetection", &[]),
            t("linedetection-2", "linedetection", &["record"]),
            disk,
        ];
        assert_eq!(unlinked_types(&list), vec!["linedetection".to_string()]);
        assert_eq!(judge_triggers(&[]), vec![Finding::NoTriggers]);
    }

    #[test]
    fn smart_triggers_missing_from_the_list_are_asked_one_by_one() {
        let t = |ty: &str, ch: &str| EventTrigger {
            id: format!("{ty}-{ch}"),
            event_type: ty.into(),
            channel: Some(ch.into()),
            methods: vec![],
        };
        let list = [
            t("VMD", "1"),
            t("linedetection", "1"),
            t("IO", "9"),
            t("VMD", "2"),
        ];
        let ids = per_type_ids(&list);
        assert!(!ids.contains(&"linedetection-1".to_string()));
        assert!(ids.contains(&"fielddetection-1".to_string()));
        assert!(ids.contains(&"scenechangedetection-2".to_string()));
        assert!(!ids.iter().any(|i| i.ends_with("-9")));
        assert_eq!(ids.len(), 9);
        let many: Vec<EventTrigger> = (1..=32).map(|c| t("VMD", &c.to_string())).collect();
        assert_eq!(
            per_type_ids(&many).len(),
            PER_TYPE_CHANNELS * PER_TYPE_EVENTS.len()
        );
    }

    fn seen(ty: &str, t: &str, at: u64) -> Seen {
        Seen {
            event: EventRef {
                event_type: ty.into(),
                channel: Some("1".into()),
                date_time: Some(t.into()),
            },
            state: Some("active".into()),
            at_ms: at,
        }
    }

    fn pushed(ty: &str, t: &str, at: u64, status: u16) -> Pushed {
        Pushed {
            seen: seen(ty, t, at),
            status,
            auth: (status == 401).then_some(AuthCheck::WrongCredentials),
        }
    }

    #[test]
    fn generated_against_pushed() {
        let g = vec![
            seen("VMD", "t1", 1000),
            seen("linedetection", "t2", 2000),
            seen("VMD", "t3", 3000),
        ];
        // All in time.
        let p = vec![
            pushed("VMD", "t1", 1100, 200),
            pushed("linedetection", "t2", 2050, 200),
            pushed("VMD", "t3", 3300, 200),
        ];
        let f = compare(&g, &p, 2000, 4, 30, &[]);
        assert_eq!(
            f,
            vec![Finding::AllPushed {
                events: 3,
                max_late_ms: 300,
                keepalives: 4
            }]
        );
        // One never pushed (its type unlinked), one late.
        let p = vec![
            pushed("VMD", "t1", 1100, 200),
            pushed("VMD", "t3", 9000, 200),
        ];
        let f = compare(&g, &p, 2000, 0, 30, &["linedetection".to_string()]);
        assert_eq!(kinds(&f), vec!["never_pushed", "late_pushes"]);
        match &f[0] {
            Finding::NeverPushed {
                events,
                unlinked,
                generated,
            } => {
                assert_eq!(events.len(), 1);
                assert_eq!(events[0].event_type, "linedetection");
                assert_eq!(unlinked, &vec!["linedetection".to_string()]);
                assert_eq!(*generated, 3);
            }
            other => panic!("{other:?}"),
        }
        match &f[1] {
            Finding::LatePushes { pushes, .. } => assert_eq!(pushes[0].late_ms, 6000),
            other => panic!("{other:?}"),
        }
        // A push of another event does not stand in for a generated one.
        let p = vec![pushed("VMD", "other", 1000, 200)];
        let f = compare(&g[..1], &p, 2000, 0, 30, &[]);
        assert_eq!(kinds(&f), vec!["never_pushed"]);
        // Refused pushes arrived, but are named; a refusal followed by an accepted push of the
        // same event (the digest round) is no refusal.
        let p = vec![pushed("VMD", "t1", 1100, 401)];
        let f = compare(&g[..1], &p, 2000, 0, 30, &[]);
        assert_eq!(kinds(&f), vec!["pushes_rejected"]);
        let p = vec![
            pushed("VMD", "t1", 1100, 401),
            pushed("VMD", "t1", 1150, 200),
        ];
        let f = compare(&g[..1], &p, 2000, 0, 30, &[]);
        assert_eq!(kinds(&f), vec!["all_pushed"]);
        // The challenge round's "missing" is not the reason when the answer to it was wrong.
        let mut challenge = pushed("VMD", "t1", 1100, 401);
        challenge.auth = Some(AuthCheck::Missing);
        let p = vec![challenge, pushed("VMD", "t1", 1150, 401)];
        match compare(&g[..1], &p, 2000, 0, 30, &[]).as_slice() {
            [Finding::PushesRejected { auth, .. }] => {
                assert_eq!(*auth, Some(AuthCheck::WrongCredentials))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            kinds(&compare(&[], &[], 2000, 3, 30, &[])),
            vec!["nothing_generated"]
        );
    }

    #[test]
    fn the_test_message_is_the_push_no_event_stands_for() {
        let g = vec![seen("VMD", "t1", 1000), seen("VMD", "t2", 2000)];
        let p = vec![
            pushed("VMD", "t1", 1100, 200),
            pushed("VMD", "t1", 1200, 200),
            pushed("VMD", "t2", 2100, 200),
        ];
        assert_eq!(unpaired_pushes(&g, &p), vec![1]);
        assert!(unpaired_pushes(&g, &p[..1]).is_empty());
    }

    #[test]
    fn events_without_date_times_pair_by_time() {
        let mut a = seen("IO", "", 1000);
        a.event.date_time = None;
        let mut p = pushed("IO", "", 1500, 200);
        p.seen.event.date_time = None;
        let f = compare(&[a], &[p], 2000, 0, 30, &[]);
        assert_eq!(kinds(&f), vec!["all_pushed"]);
    }
}
