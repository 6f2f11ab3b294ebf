//! Capture timestamps. Kept as integer nanoseconds since the Unix epoch so pcapng's nanosecond
//! precision survives and arithmetic never drifts.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// A point in capture time, nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From seconds and microseconds (classic pcap).
    pub fn from_micros(secs: i64, micros: i64) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(micros.saturating_mul(1_000)),
        )
    }

    /// The system clock's now. Only shells call it (a live capture stamps what it sees with the
    /// system clock, the listener and the store stamp what they receive and write); the core takes
    /// every time it needs as input, so replays stay reproducible. A clock before 1970 reads as the
    /// epoch instead of failing.
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_nanos(
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            i64::from(d.subsec_nanos()),
        )
    }

    /// From seconds and nanoseconds (pcapng / nanosecond pcap).
    pub fn from_nanos(secs: i64, nanos: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// Seconds since the epoch as a float, the unit used in JSON output.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Milliseconds from `earlier` to `self` (negative if `self` is earlier).
    pub fn millis_since(self, earlier: Timestamp) -> f64 {
        // Saturating: capture timestamps are input (a damaged record can hold any value).
        self.0.saturating_sub(earlier.0) as f64 / 1e6
    }

    /// Seconds from `earlier` to `self`.
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1e9
    }

    /// UTC wall-clock text `YYYY-MM-DD HH:MM:SS.mmm` for humans (no time-zone database needed).
    pub fn to_utc_string(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let millis = self.0.rem_euclid(1_000_000_000) / 1_000_000;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }

    /// `HH:MM:SS.mmm` (UTC), for narrow list columns.
    pub fn to_clock_string(self) -> String {
        let s = self.to_utc_string();
        // Always "YYYY-MM-DD " first (i64 nanoseconds span the years 1677-2262), but never panic.
        s.get(11..).unwrap_or(&s).to_string()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_secs_f64())
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_matches_known_dates() {
        // 2024-02-29 12:34:56.789 UTC = 1709210096.789
        let t = Timestamp::from_nanos(1_709_210_096, 789_000_000);
        assert_eq!(t.to_utc_string(), "2024-02-29 12:34:56.789");
        assert_eq!(Timestamp(0).to_utc_string(), "1970-01-01 00:00:00.000");
        assert_eq!(t.to_clock_string(), "12:34:56.789");
    }

    #[test]
    fn now_reads_the_system_clock_in_nanoseconds() {
        let nanos = || {
            let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            i64::try_from(d.as_nanos()).unwrap()
        };
        let before = nanos();
        let t = Timestamp::now();
        let after = nanos();
        assert!(
            before <= t.0 && t.0 <= after,
            "{before} <= {} <= {after}",
            t.0
        );
    }

    #[test]
    fn differences() {
        let a = Timestamp::from_micros(10, 500_000);
        let b = Timestamp::from_micros(12, 0);
        assert_eq!(b.millis_since(a), 1500.0);
        assert_eq!(b.secs_since(a), 1.5);
        // Damaged captures: extreme timestamps saturate instead of overflowing.
        let (lo, hi) = (Timestamp(i64::MIN), Timestamp(i64::MAX));
        assert_eq!(hi.secs_since(lo), i64::MAX as f64 / 1e9);
        assert_eq!(lo.millis_since(hi), i64::MIN as f64 / 1e6);
        assert_eq!(lo.to_clock_string().len(), "HH:MM:SS.mmm".len());
        assert_eq!(hi.to_clock_string().len(), "HH:MM:SS.mmm".len());
    }
}
