//! The checklist doctor prints: typed findings, each with its outcome, the evidence (its
//! `Display`) and the next step in plain words. Code and tests match on [`Finding`] kinds and
//! [`Outcome`]s, never on the text.

use serde::Serialize;

use crate::device::info::DeviceInfo;
use crate::model::AuthCheck;

/// The four steps, in the order doctor runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Reachable, speaks ISAPI, who it is, credentials and permissions.
    Device,
    /// The alarm host slots and whether they reach the server.
    AlarmHosts,
    /// Which events notify the surveillance center.
    Linkage,
    /// Events the device generated against pushes that arrived.
    Live,
}

impl Step {
    /// 1-based number as printed.
    pub fn number(self) -> u8 {
        match self {
            Step::Device => 1,
            Step::AlarmHosts => 2,
            Step::Linkage => 3,
            Step::Live => 4,
        }
    }

    /// Heading of the step.
    pub fn title(self) -> &'static str {
        match self {
            Step::Device => "device",
            Step::AlarmHosts => "alarm hosts",
            Step::Linkage => "event linkage",
            Step::Live => "live proof",
        }
    }
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    /// Not enough evidence either way (a call refused, a capture-like gap, nothing happened).
    CannotTell,
    Fail,
}

impl Outcome {
    /// The marker printed before a check.
    pub fn marker(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::CannotTell => "????",
        }
    }
}

/// `HTTP` or `HTTPS`: what a slot says, or what a server was found to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scheme {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scheme::Http => "HTTP",
            Scheme::Https => "HTTPS",
        })
    }
}

/// An event as doctor names it in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRef {
    pub event_type: String,
    pub channel: Option<String>,
    /// The event's own dateTime, when it has one.
    pub date_time: Option<String>,
}

impl std::fmt::Display for EventRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.event_type)?;
        if let Some(c) = &self.channel {
            write!(f, " ch{c}")?;
        }
        if let Some(t) = &self.date_time {
            write!(f, " at {t}")?;
        }
        Ok(())
    }
}

/// A trigger as doctor names it in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriggerRef {
    pub id: String,
    pub event_type: String,
    pub channel: Option<String>,
}

impl std::fmt::Display for TriggerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.event_type)?;
        if let Some(c) = &self.channel {
            write!(f, " ch{c}")?;
        }
        Ok(())
    }
}

/// A pushed event that came late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatePush {
    pub event: EventRef,
    /// Push arrival minus the event's arrival on the alertStream.
    pub late_ms: u64,
}

/// How the device's host test went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TestResult {
    /// The device says it worked and the test push arrived.
    Arrived,
    /// The device says it worked but nothing arrived here (some models only open TCP).
    ReportedOkNothingArrived,
    /// The device reports a failure.
    DeviceReportsFailure { error: String },
    /// The device has no host test (404/405/500 on `/test`).
    NotOffered { status: u16 },
    /// The call failed.
    CallFailed { detail: String },
}

/// What one check found. The evidence is the `Display` text; [`Finding::next_step`] says what
/// to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    // ---- step 1: device
    Reachable {
        url: String,
    },
    Unreachable {
        url: String,
        detail: String,
    },
    NotIsapi {
        detail: String,
    },
    CredentialsAccepted {
        user: String,
    },
    CredentialsRejected {
        user: String,
        detail: String,
    },
    /// The device wants another scheme than digest.
    NoDigest {
        offered: String,
    },
    Identity {
        info: DeviceInfo,
    },
    IdentityUnreadable {
        detail: String,
    },
    /// The account may read the event configuration.
    ConfigReadable {
        path: String,
    },
    /// 403 on the event configuration: a permission problem, not a wrong password.
    ConfigForbidden {
        path: String,
        detail: String,
    },
    /// Other failure reading the event configuration.
    ConfigUnreadable {
        path: String,
        detail: String,
    },
    /// Doctor changes nothing, so whether the account may change the configuration is untested.
    WriteNotTested,
    /// The alarm host list written back unchanged was accepted (`--try-write`).
    ConfigWritable {
        path: String,
    },

    // ---- step 2: alarm hosts
    NoSlotInUse {
        slots: usize,
    },
    SlotInUse {
        id: String,
        target: String,
        format: String,
        auth: String,
    },
    /// Nothing accepts connections at the slot's address and port, seen from here.
    ServerUnreachable {
        id: String,
        address: String,
        detail: String,
    },
    /// The slot's address is not the server's.
    WrongAddress {
        id: String,
        slot: String,
        server: String,
    },
    /// The slot's port is not the server's.
    WrongPort {
        id: String,
        slot: String,
        server: u16,
    },
    /// The slot's protocolType is not what the server speaks there.
    ProtocolMismatch {
        id: String,
        slot: Scheme,
        server: Scheme,
    },
    ProtocolMatches {
        id: String,
        protocol: Scheme,
    },
    /// The port answers neither plain HTTP nor TLS.
    NoHttp {
        id: String,
        address: String,
        detail: String,
    },
    PathMismatch {
        id: String,
        slot: String,
        server: String,
    },
    FormatMismatch {
        id: String,
        slot: String,
        server: String,
    },
    FormatAccepted {
        id: String,
        format: String,
    },
    /// The server asks for credentials and the slot sends none.
    AuthMissing {
        id: String,
        server: String,
    },
    /// The server asks for another scheme than the slot's.
    AuthSchemeMismatch {
        id: String,
        slot: String,
        server: String,
    },
    /// The server asks for the slot's scheme; whether the password is right only a push shows.
    AuthUnverified {
        id: String,
        scheme: String,
    },
    AuthNotRequired {
        id: String,
        slot: String,
    },

    // ---- step 3: linkage
    Linked {
        triggers: Vec<TriggerRef>,
    },
    /// Triggers without "notify surveillance center": those events are never pushed.
    /// `none_linked`: no channel's event notifies the center (device-wide exceptions such as
    /// diskfull aside), so no camera event can ever be pushed.
    NotLinked {
        triggers: Vec<TriggerRef>,
        none_linked: bool,
    },
    NoTriggers,
    TriggersForbidden {
        detail: String,
    },
    TriggersUnreadable {
        detail: String,
    },

    // ---- step 4: live
    LiveNotRun,
    /// No slot points at doctor's listener, so no push can arrive here.
    NoSlotToListener {
        listen: String,
    },
    TestMessage {
        id: String,
        test: TestResult,
    },
    StreamUnavailable {
        detail: String,
    },
    /// The alertStream dropped: events in the gaps may be missing from the comparison.
    StreamGaps {
        drops: u32,
        gap_ms: u64,
    },
    /// Every generated event was pushed in time.
    AllPushed {
        events: usize,
        max_late_ms: u64,
        keepalives: u64,
    },
    /// Events the device generated that never arrived.
    NeverPushed {
        events: Vec<EventRef>,
        generated: usize,
        /// Types among them whose triggers do not notify the center (step 3).
        unlinked: Vec<String>,
    },
    LatePushes {
        pushes: Vec<LatePush>,
        limit_ms: u64,
    },
    /// Pushes arrived and the server did not answer 200 (credentials refused ...).
    PushesRejected {
        count: usize,
        status: u16,
        /// What the listener's credential check found, when it checks.
        auth: Option<AuthCheck>,
    },
    /// The device generated no event during the watch.
    NothingGenerated {
        secs: u64,
        keepalives: u64,
    },
}

impl Finding {
    /// The verdict this finding carries.
    pub fn outcome(&self) -> Outcome {
        use Finding::*;
        match self {
            Reachable { .. }
            | CredentialsAccepted { .. }
            | Identity { .. }
            | ConfigReadable { .. }
            | ConfigWritable { .. }
            | SlotInUse { .. }
            | ProtocolMatches { .. }
            | FormatAccepted { .. }
            | AuthNotRequired { .. }
            | Linked { .. }
            | AllPushed { .. } => Outcome::Pass,
            TestMessage { test, .. } => match test {
                TestResult::Arrived => Outcome::Pass,
                TestResult::DeviceReportsFailure { .. } => Outcome::Fail,
                _ => Outcome::CannotTell,
            },
            NotLinked { none_linked, .. } => {
                if *none_linked {
                    Outcome::Fail
                } else {
                    Outcome::CannotTell
                }
            }
            Unreachable { .. }
            | NotIsapi { .. }
            | CredentialsRejected { .. }
            | NoDigest { .. }
            | ConfigForbidden { .. }
            | NoSlotInUse { .. }
            | ServerUnreachable { .. }
            | WrongAddress { .. }
            | WrongPort { .. }
            | ProtocolMismatch { .. }
            | NoHttp { .. }
            | PathMismatch { .. }
            | FormatMismatch { .. }
            | AuthMissing { .. }
            | AuthSchemeMismatch { .. }
            | NoTriggers
            | TriggersForbidden { .. }
            | NeverPushed { .. }
            | LatePushes { .. }
            | PushesRejected { .. } => Outcome::Fail,
            IdentityUnreadable { .. }
            | ConfigUnreadable { .. }
            | WriteNotTested
            | AuthUnverified { .. }
            | TriggersUnreadable { .. }
            | LiveNotRun
            | NoSlotToListener { .. }
            | StreamUnavailable { .. }
            | StreamGaps { .. }
            | NothingGenerated { .. } => Outcome::CannotTell,
        }
    }

    /// What to do next, in plain words (None when nothing needs doing).
    pub fn next_step(&self) -> Option<String> {
        use Finding::*;
        let s = match self {
            Unreachable { url, .. } => format!("check that {url} is the device's web address and that this machine can reach it (ping, firewall, VLAN)"),
            NotIsapi { .. } => "point --device at the device's own web port (http://IP or https://IP), not at a recorder's or a proxy's page".into(),
            CredentialsRejected { .. } => "give the device's admin user and password (--user, --password or ALARMSCOPE_DEVICE_PASSWORD); mind the lock after repeated failures".into(),
            NoDigest { .. } => "enable digest authentication for the web interface on the device (System > Security > Web Authentication)".into(),
            IdentityUnreadable { .. } => "the rest of the checks still run; compare the model on the device's label".into(),
            ConfigForbidden { .. } => "use an administrator account, or give this user the \"Remote Parameters Settings\" permission (User Management); recorders refuse operators".into(),
            ConfigUnreadable { .. } => "open the device's web page and check the event settings by hand".into(),
            WriteNotTested => "add --try-write to write the alarm host list back unchanged and see whether the device allows it".into(),
            NoSlotInUse { .. } => "point an alarm host slot at your server: `alarmscope device set --id 1 --address SERVER-IP --port PORT --url /PATH`".into(),
            ServerUnreachable { id, .. } => format!("start the alarm server or open the firewall; or fix slot {id}'s address and port with `alarmscope device set --id {id} --address ... --port ...`"),
            WrongAddress { id, server, .. } => format!("`alarmscope device set --id {id} --address {}`", server.rsplit_once(':').map_or(server.as_str(), |(h, _)| h)),
            WrongPort { id, server, .. } => format!("`alarmscope device set --id {id} --port {server}`"),
            ProtocolMismatch { id, server, .. } => format!("`alarmscope device set --id {id} --protocol {server}` (a protocol mismatch silently stops every push)"),
            NoHttp { .. } => "the port answers neither HTTP nor TLS: is the alarm server really listening there?".into(),
            PathMismatch { id, server, .. } => format!("`alarmscope device set --id {id} --url {server}`"),
            FormatMismatch { id, server, .. } => format!("`alarmscope device set --id {id} --format {server}`"),
            AuthMissing { server, .. } => format!("set the slot's authentication to {server} with the server's user and password in the device's web page (Alarm Server / HTTP Listening), or turn authentication off on the server"),
            AuthSchemeMismatch { slot, server, .. } => format!("the slot sends {slot}, the server wants {server}: change one of them"),
            AuthUnverified { .. } => "run doctor with --listen to see whether the device's pushes are accepted".into(),
            NotLinked { triggers, none_linked } => {
                let names: Vec<String> = triggers.iter().take(6).map(|t| t.to_string()).collect();
                format!(
                    "{}: in the device's web page, Event > (the event) > Linkage Method, tick \"Notify Surveillance Center\" for {}{}",
                    if *none_linked { "no channel's event can be pushed" } else { "if you need these events" },
                    names.join(", "),
                    if triggers.len() > 6 { " ..." } else { "" }
                )
            }
            NoTriggers => "the device lists no event trigger: enable and link an event (Event > Basic/Smart Event) first".into(),
            TriggersForbidden { .. } => "use an administrator account to see the linkage".into(),
            TriggersUnreadable { .. } => "check each event's Linkage Method in the device's web page: \"Notify Surveillance Center\" must be ticked".into(),
            LiveNotRun => "add --listen ADDR (an address of this machine the device can reach) to watch real events arrive".into(),
            NoSlotToListener { listen } => format!("point a slot at this machine for the test: `alarmscope device set --id 1 --address THIS-IP --port {}`", listen.rsplit_once(':').map_or("PORT", |(_, p)| p)),
            TestMessage { test: TestResult::DeviceReportsFailure { .. }, .. } => "the device cannot reach the server from its side (routing, firewall, NAT): check from the device's network".into(),
            TestMessage { test: TestResult::ReportedOkNothingArrived, .. } => "some models only open a TCP connection for the test; trigger a real event and watch".into(),
            StreamUnavailable { .. } => "trigger an event and watch the listener: `alarmscope listen`".into(),
            StreamGaps { .. } => "run again on a steadier network: events in the gaps could not be compared".into(),
            NeverPushed { unlinked, events, .. } if !unlinked.is_empty() => {
                let others = events
                    .iter()
                    .any(|e| !unlinked.iter().any(|u| u.eq_ignore_ascii_case(&e.event_type)));
                format!(
                    "link {} to \"Notify Surveillance Center\"{}",
                    unlinked.join(", "),
                    if others { "; for the others check the arming schedule, the slot and that the server answers 200 OK at once" } else { "" }
                )
            }
            NeverPushed { .. } => "check the arming schedule (Event > Linkage > Arming Schedule), the slot and that the server answers 200 OK at once (a slow or missing answer makes devices hold later events)".into(),
            LatePushes { .. } => "a slow server answer makes devices queue events: the server must answer 200 OK at once; check the network between device and server".into(),
            PushesRejected { auth: Some(AuthCheck::Missing), .. } => "the device sends no credentials: set the slot's authentication, user name and password to the server's".into(),
            PushesRejected { auth: Some(AuthCheck::WrongScheme), .. } => "the slot's authentication method is not the server's: change httpAuthenticationMethod (basic / MD5digest)".into(),
            PushesRejected { status: 401, .. } => "the server refuses the device's credentials: set the slot's user name and password to the server's".into(),
            PushesRejected { .. } => "the server must answer 200 OK to every push".into(),
            NothingGenerated { .. } => "trigger an event during the watch (walk past the camera, close an alarm input) or watch longer with --watch SECS".into(),
            _ => return None,
        };
        Some(s)
    }
}

fn ms(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.0} s", v as f64 / 1000.0)
    } else {
        format!("{:.1} s", v as f64 / 1000.0)
    }
}

fn list<T: std::fmt::Display>(items: &[T], max: usize) -> String {
    let mut s: Vec<String> = items.iter().take(max).map(|t| t.to_string()).collect();
    if items.len() > max {
        s.push(format!("and {} more", items.len() - max));
    }
    s.join(", ")
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Finding::*;
        match self {
            Reachable { url } => write!(f, "{url} answers and speaks ISAPI"),
            Unreachable { url, detail } => write!(f, "{url} cannot be reached: {detail}"),
            NotIsapi { detail } => write!(f, "not an ISAPI device: {detail}"),
            CredentialsAccepted { user } => write!(f, "digest credentials of {user:?} accepted"),
            CredentialsRejected { user, detail } => {
                write!(f, "credentials of {user:?} refused (401){detail}")
            }
            NoDigest { offered } => write!(f, "the device does not offer digest authentication ({offered})"),
            Identity { info } => write!(f, "{info}"),
            IdentityUnreadable { detail } => write!(f, "deviceInfo unreadable: {detail}"),
            ConfigReadable { path } => write!(f, "the account may read the event configuration ({path})"),
            ConfigForbidden { path, detail } => write!(f, "403 Forbidden on {path}: the account lacks the permission for the event configuration{detail}"),
            ConfigUnreadable { path, detail } => write!(f, "{path} could not be read: {detail}"),
            WriteNotTested => write!(f, "whether the account may change the event configuration: not tested (doctor changes nothing; --try-write tests it)"),
            ConfigWritable { path } => write!(f, "the account may change the event configuration ({path} written back unchanged)"),
            NoSlotInUse { slots } => write!(f, "none of the {slots} alarm host slots has an address: the device pushes nowhere"),
            SlotInUse { id, target, format, auth } => write!(f, "slot {id} pushes to {target} ({format}, authentication {auth})"),
            ServerUnreachable { id, address, detail } => write!(f, "slot {id}: nothing accepts connections at {address} from here ({detail})"),
            WrongAddress { id, slot, server } => write!(f, "slot {id} points at {slot}, the server is at {server}"),
            WrongPort { id, slot, server } => write!(f, "slot {id} uses port {slot}, the server listens on {server}"),
            ProtocolMismatch { id, slot, server } => write!(f, "slot {id} pushes {slot}, the server there speaks {server}"),
            ProtocolMatches { id, protocol } => write!(f, "slot {id}: the server speaks {protocol}, as the slot says"),
            NoHttp { id, address, detail } => write!(f, "slot {id}: {address} accepts connections but answers neither HTTP nor TLS ({detail})"),
            PathMismatch { id, slot, server } => write!(f, "slot {id} posts to {slot}, the server expects {server}"),
            FormatMismatch { id, slot, server } => write!(f, "slot {id} sends {slot}, the server expects {server}"),
            FormatAccepted { id, format } => write!(f, "slot {id} sends {format}, which the server takes"),
            AuthMissing { id, server } => write!(f, "the server asks for {server} credentials and slot {id} sends none"),
            AuthSchemeMismatch { id, slot, server } => write!(f, "slot {id} authenticates with {slot}, the server asks for {server}"),
            AuthUnverified { id, scheme } => write!(f, "the server asks for {scheme} and slot {id} sends it; whether the password is right only a push shows"),
            AuthNotRequired { id, slot } => write!(f, "the server asks for no credentials (slot {id}: {slot})"),
            Linked { triggers } => write!(f, "{} trigger(s) notify the surveillance center: {}", triggers.len(), list(triggers, 12)),
            NotLinked { triggers, none_linked } => write!(
                f,
                "{}{} trigger(s) do not notify the surveillance center; those events are never pushed: {}",
                if *none_linked { "no channel's event is linked: " } else { "" },
                triggers.len(),
                list(triggers, 12)
            ),
            NoTriggers => write!(f, "the device lists no event trigger"),
            TriggersForbidden { detail } => write!(f, "403 Forbidden on /ISAPI/Event/triggers: the account may not read the linkage{detail}"),
            TriggersUnreadable { detail } => write!(f, "event triggers could not be read: {detail}"),
            LiveNotRun => write!(f, "not run (no --listen)"),
            NoSlotToListener { listen } => write!(f, "no alarm host slot points at doctor's listener {listen}: no push can arrive here"),
            TestMessage { id, test } => match test {
                TestResult::Arrived => write!(f, "slot {id}: the device's test message arrived"),
                TestResult::ReportedOkNothingArrived => write!(f, "slot {id}: the device reports its test succeeded, but no test message arrived"),
                TestResult::DeviceReportsFailure { error } => write!(f, "slot {id}: the device reports its test failed: {error}"),
                TestResult::NotOffered { status } => write!(f, "slot {id}: the device has no host test (answered {status})"),
                TestResult::CallFailed { detail } => write!(f, "slot {id}: the test call failed: {detail}"),
            },
            StreamUnavailable { detail } => write!(f, "the device's alertStream could not be read: {detail}"),
            StreamGaps { drops, gap_ms } => write!(f, "the alertStream dropped {drops} time(s), {} without it: events then may be missing here (uncertain)", ms(*gap_ms)),
            AllPushed { events, max_late_ms, keepalives } => write!(f, "all {events} generated event(s) were pushed, the latest {} after the alertStream showed it ({keepalives} keep-alives not counted)", ms(*max_late_ms)),
            NeverPushed { events, generated, unlinked } => {
                write!(f, "{} of {generated} generated event(s) never arrived: {}", events.len(), list(events, 8))?;
                if !unlinked.is_empty() {
                    write!(f, " (not linked to the center: {})", unlinked.join(", "))?;
                }
                Ok(())
            }
            LatePushes { pushes, limit_ms } => {
                let items: Vec<String> = pushes.iter().map(|p| format!("{} +{}", p.event, ms(p.late_ms))).collect();
                write!(f, "{} push(es) arrived more than {} after the event: {}", pushes.len(), ms(*limit_ms), list(&items, 8))
            }
            PushesRejected { count, status, auth } => {
                write!(f, "{count} generated event(s) arrived only as pushes answered {status}, not 200")?;
                match auth {
                    Some(a) => write!(f, " ({a})"),
                    None => Ok(()),
                }
            }
            NothingGenerated { secs, keepalives } => write!(f, "the device generated no event in {secs} s ({keepalives} keep-alives)"),
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub step: Step,
    pub outcome: Outcome,
    pub finding: Finding,
}

impl Check {
    /// A check with the finding's own outcome.
    pub fn new(step: Step, finding: Finding) -> Check {
        Check {
            step,
            outcome: finding.outcome(),
            finding,
        }
    }

    /// The JSON line: the check, its text and its next step.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.insert("text".into(), self.finding.to_string().into());
            m.insert(
                "next".into(),
                self.finding
                    .next_step()
                    .map_or(serde_json::Value::Null, Into::into),
            );
        }
        v
    }

    /// The text lines: marker, evidence, then the next step indented.
    pub fn to_text(&self) -> String {
        let mut s = format!("  [{}] {}\n", self.outcome.marker(), self.finding);
        if self.outcome != Outcome::Pass {
            if let Some(n) = self.finding.next_step() {
                s.push_str(&format!("         -> {n}\n"));
            }
        }
        s
    }
}

/// The verdict of a step: its worst check.
pub fn step_outcome(checks: &[Check], step: Step) -> Option<Outcome> {
    checks
        .iter()
        .filter(|c| c.step == step)
        .map(|c| c.outcome)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_step_verdicts() {
        let checks = vec![
            Check::new(
                Step::Device,
                Finding::Reachable {
                    url: "http://d".into(),
                },
            ),
            Check::new(Step::Device, Finding::WriteNotTested),
            Check::new(
                Step::Linkage,
                Finding::NotLinked {
                    triggers: vec![],
                    none_linked: false,
                },
            ),
            Check::new(
                Step::AlarmHosts,
                Finding::WrongPort {
                    id: "1".into(),
                    slot: "80".into(),
                    server: 8080,
                },
            ),
        ];
        assert_eq!(
            step_outcome(&checks, Step::Device),
            Some(Outcome::CannotTell)
        );
        assert_eq!(step_outcome(&checks, Step::AlarmHosts), Some(Outcome::Fail));
        assert_eq!(
            step_outcome(&checks, Step::Linkage),
            Some(Outcome::CannotTell)
        );
        assert_eq!(step_outcome(&checks, Step::Live), None);
        let none = Finding::NotLinked {
            triggers: vec![],
            none_linked: true,
        };
        assert_eq!(none.outcome(), Outcome::Fail);
    }

    #[test]
    fn json_carries_kind_fields_text_and_next() {
        let c = Check::new(
            Step::AlarmHosts,
            Finding::ProtocolMismatch {
                id: "1".into(),
                slot: Scheme::Https,
                server: Scheme::Http,
            },
        );
        let v = c.to_json();
        assert_eq!(v["step"], "alarm_hosts");
        assert_eq!(v["outcome"], "fail");
        assert_eq!(v["finding"]["kind"], "protocol_mismatch");
        assert_eq!(v["finding"]["slot"], "HTTPS");
        assert_eq!(v["finding"]["server"], "HTTP");
        assert!(v["next"]
            .as_str()
            .is_some_and(|n| n.contains("--protocol HTTP")));
        let t = c.to_text();
        assert!(t.starts_with("  [FAIL] slot 1 pushes HTTPS"), "{t}");
    }
}
