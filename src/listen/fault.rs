//! Fault injection: which events the listener fails on purpose, and how. Pure decision logic
//! (no clock, no randomness source beyond a seed), so a lab run is reproducible.
//!
//! Spec syntax (`--fault SPEC`, repeatable; the first spec that selects an event applies):
//! `ACTION[,SELECTOR...]` where ACTION is one of
//! - `delay=DURATION` (`500ms`, `2s`, `1.5s`, `1m`; bare numbers are seconds): answer 200 late,
//! - `status=CODE` (100..=599 not 1xx, e.g. 503): answer that status instead of 200,
//! - `hang`: never answer, hold the connection until the device gives up,
//! - `reset`: abort the connection with a TCP RST instead of answering,
//!
//! and SELECTORs (all must match; none means every event) are
//! - `every=N`: the N-th, 2N-th, ... event this spec's other selectors let through,
//! - `ratio=R` (0..=1): a deterministic pseudo-random fraction, seeded by `--fault-seed`,
//! - `type=T`: events whose eventType equals T (case-insensitive; `type=none` for no event).

use std::time::Duration;

/// What to do instead of a prompt 200 OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    Delay(Duration),
    Status(u16),
    Hang,
    Reset,
}

impl FaultAction {
    /// Short label shown in `injected_fault` (JSON and TUI).
    pub fn label(&self) -> String {
        match self {
            FaultAction::Delay(d) => format!("delay={}ms", d.as_millis()),
            FaultAction::Status(s) => format!("status={s}"),
            FaultAction::Hang => "hang".into(),
            FaultAction::Reset => "reset".into(),
        }
    }
}

/// Which events a spec applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Every(u64),
    Ratio(f64),
    Type(String),
}

/// One parsed `--fault` option.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub action: FaultAction,
    pub selectors: Vec<Selector>,
    /// The text it was parsed from.
    pub text: String,
}

/// Why a duration option could not be read (the text is what clap prints).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("bad duration '{0}' (use e.g. 500ms, 2s, 1m)")]
    Bad(String),
    #[error("duration '{0}' out of range (0 to 24h)")]
    OutOfRange(String),
}

/// Why a `--fault` spec could not be read: which item and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultSpecError {
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error("bad status '{0}'")]
    BadStatus(String),
    #[error("status {0} must be a final status 200..599")]
    StatusRange(u16),
    #[error("bad every '{0}'")]
    BadEvery(String),
    #[error("every=0: use every=1 for all events")]
    EveryZero,
    #[error("bad ratio '{0}'")]
    BadRatio(String),
    #[error("ratio {0} must be between 0 and 1")]
    RatioRange(f64),
    #[error("unknown fault item '{0}' (actions: delay=2s, status=503, hang, reset; selectors: every=N, ratio=0.3, type=VMD)")]
    UnknownItem(String),
    #[error("fault '{0}' has more than one action")]
    TwoActions(String),
    #[error("fault '{0}' has no action (delay=, status=, hang or reset)")]
    NoAction(String),
}

/// Parse a duration: `250ms`, `2s`, `1.5s`, `1m`, or bare seconds.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| DurationError::Bad(s.to_string()))?;
    if !v.is_finite() || v < 0.0 || v * mult > 86_400.0 {
        return Err(DurationError::OutOfRange(s.to_string()));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

impl std::str::FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(text: &str) -> Result<Self, FaultSpecError> {
        let mut action = None;
        let mut selectors = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
                None => (item.to_ascii_lowercase(), None),
            };
            let new_action = match (k.as_str(), v) {
                ("delay", Some(v)) => Some(FaultAction::Delay(parse_duration(v)?)),
                ("status", Some(v)) => {
                    let code: u16 = v
                        .parse()
                        .map_err(|_| FaultSpecError::BadStatus(v.to_string()))?;
                    if !(200..=599).contains(&code) {
                        return Err(FaultSpecError::StatusRange(code));
                    }
                    Some(FaultAction::Status(code))
                }
                ("hang", None) => Some(FaultAction::Hang),
                ("reset", None) => Some(FaultAction::Reset),
                ("every", Some(v)) => {
                    let n: u64 = v
                        .parse()
                        .map_err(|_| FaultSpecError::BadEvery(v.to_string()))?;
                    if n == 0 {
                        return Err(FaultSpecError::EveryZero);
                    }
                    selectors.push(Selector::Every(n));
                    None
                }
                ("ratio", Some(v)) => {
                    let r: f64 = v
                        .parse()
                        .map_err(|_| FaultSpecError::BadRatio(v.to_string()))?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err(FaultSpecError::RatioRange(r));
                    }
                    selectors.push(Selector::Ratio(r));
                    None
                }
                ("type", Some(v)) if !v.is_empty() => {
                    selectors.push(Selector::Type(v.to_string()));
                    None
                }
                _ => return Err(FaultSpecError::UnknownItem(item.to_string())),
            };
            if let Some(a) = new_action {
                if action.is_some() {
                    return Err(FaultSpecError::TwoActions(text.to_string()));
                }
                action = Some(a);
            }
        }
        let action = action.ok_or_else(|| FaultSpecError::NoAction(text.to_string()))?;
        Ok(FaultSpec {
            action,
            selectors,
            text: text.trim().to_string(),
        })
    }
}

/// The decision state: specs plus their counters.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    specs: Vec<FaultSpec>,
    /// Events each spec's type selector let through so far (for `every`).
    seen: Vec<u64>,
    seed: u64,
    /// Events decided so far (the ratio draw's input).
    decided: u64,
}

/// splitmix64: a well-mixed deterministic hash of (seed, n).
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed
        .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl FaultPlan {
    pub fn new(specs: Vec<FaultSpec>, seed: u64) -> Self {
        let seen = vec![0; specs.len()];
        FaultPlan {
            specs,
            seen,
            seed,
            decided: 0,
        }
    }

    /// True when no fault is configured.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Decide for the next complete event (call once per event, in arrival order).
    pub fn decide(&mut self, event_type: Option<&str>) -> Option<(FaultAction, String)> {
        let n = self.decided;
        self.decided = self.decided.saturating_add(1);
        // Same draw for every spec of this event, so `ratio` specs partition rather than overlap.
        let draw = (mix(self.seed, n) >> 11) as f64 / (1u64 << 53) as f64;
        let mut hit = None;
        for (i, spec) in self.specs.iter().enumerate() {
            let type_ok = spec.selectors.iter().all(|s| match s {
                Selector::Type(t) => match event_type {
                    Some(e) => e.eq_ignore_ascii_case(t),
                    None => t.eq_ignore_ascii_case("none"),
                },
                _ => true,
            });
            if !type_ok {
                continue;
            }
            let count = match self.seen.get_mut(i) {
                Some(c) => {
                    *c = c.saturating_add(1);
                    *c
                }
                None => continue,
            };
            if hit.is_some() {
                continue;
            }
            let selected = spec.selectors.iter().all(|s| match s {
                Selector::Every(k) => count % k == 0,
                Selector::Ratio(r) => draw < *r,
                Selector::Type(_) => true,
            });
            if selected {
                hit = Some((spec.action.clone(), spec.action.label()));
            }
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> FaultSpec {
        s.parse().unwrap()
    }

    #[test]
    fn parses_actions_and_selectors() {
        let cases: &[(&str, FaultAction, Vec<Selector>)] = &[
            (
                "delay=2s",
                FaultAction::Delay(Duration::from_secs(2)),
                vec![],
            ),
            (
                "delay=250ms",
                FaultAction::Delay(Duration::from_millis(250)),
                vec![],
            ),
            (
                "delay=1.5",
                FaultAction::Delay(Duration::from_millis(1500)),
                vec![],
            ),
            (
                "status=503,every=3",
                FaultAction::Status(503),
                vec![Selector::Every(3)],
            ),
            (
                "hang, type=VMD",
                FaultAction::Hang,
                vec![Selector::Type("VMD".into())],
            ),
            (
                "ratio=0.25,reset",
                FaultAction::Reset,
                vec![Selector::Ratio(0.25)],
            ),
        ];
        for (text, action, sel) in cases {
            let s = spec(text);
            assert_eq!(&s.action, action, "{text}");
            assert_eq!(&s.selectors, sel, "{text}");
        }
    }

    #[test]
    fn rejects_bad_specs() {
        use FaultSpecError as E;
        let cases: [(&str, FaultSpecError); 10] = [
            ("", E::NoAction(String::new())),
            ("every=2", E::NoAction("every=2".into())),
            ("delay=abc", E::Duration(DurationError::Bad("abc".into()))),
            ("status=99", E::StatusRange(99)),
            ("status=700", E::StatusRange(700)),
            ("hang,reset", E::TwoActions("hang,reset".into())),
            ("ratio=1.5", E::RatioRange(1.5)),
            ("every=0", E::EveryZero),
            ("explode", E::UnknownItem("explode".into())),
            (
                "delay=-1s",
                E::Duration(DurationError::OutOfRange("-1s".into())),
            ),
        ];
        for (bad, want) in cases {
            assert_eq!(bad.parse::<FaultSpec>().err(), Some(want), "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(
            FaultAction::Delay(Duration::from_millis(1500)).label(),
            "delay=1500ms"
        );
        assert_eq!(FaultAction::Status(503).label(), "status=503");
        assert_eq!(FaultAction::Hang.label(), "hang");
    }

    #[test]
    fn every_n_counts_only_matching_types() {
        let mut p = FaultPlan::new(vec![spec("status=503,every=2,type=VMD")], 0);
        let types = ["VMD", "IO", "VMD", "VMD", "IO", "VMD"];
        let hits: Vec<bool> = types.iter().map(|t| p.decide(Some(t)).is_some()).collect();
        // VMD events are the 1st, 2nd, 3rd, 4th VMD: the 2nd and 4th are failed.
        assert_eq!(hits, [false, false, true, false, false, true]);
    }

    #[test]
    fn no_selector_fails_all_and_first_spec_wins() {
        let mut p = FaultPlan::new(vec![spec("reset,type=ANPR"), spec("delay=1s")], 0);
        assert_eq!(
            p.decide(Some("anpr")).map(|x| x.0),
            Some(FaultAction::Reset)
        );
        assert_eq!(
            p.decide(Some("VMD")).map(|x| x.0),
            Some(FaultAction::Delay(Duration::from_secs(1)))
        );
        assert_eq!(
            p.decide(None).map(|x| x.0),
            Some(FaultAction::Delay(Duration::from_secs(1)))
        );
        let mut none = FaultPlan::new(vec![spec("hang,type=none")], 0);
        assert!(none.decide(None).is_some());
        assert!(none.decide(Some("VMD")).is_none());
    }

    #[test]
    fn ratio_is_deterministic_and_close_to_the_fraction() {
        let run = |seed| {
            let mut p = FaultPlan::new(vec![spec("status=500,ratio=0.3")], seed);
            (0..10_000)
                .map(|_| p.decide(Some("VMD")).is_some())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let hits = a.iter().filter(|h| **h).count();
        assert!((2_800..=3_200).contains(&hits), "{hits}");
        let mut zero = FaultPlan::new(vec![spec("hang,ratio=0")], 1);
        assert!((0..1000).all(|_| zero.decide(None).is_none()));
        let mut one = FaultPlan::new(vec![spec("hang,ratio=1")], 1);
        assert!((0..1000).all(|_| one.decide(None).is_some()));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("NaN").is_err());
    }
}
