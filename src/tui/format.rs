//! Number formatting shared by the components.

/// `1234567` -> `1,234,567`.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Exact byte count: `48,213 bytes`.
pub fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{} bytes", num(n))
    }
}

/// Megabytes with one decimal, for file sizes.
pub fn mb(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

/// Seconds in at most six columns: `4.0s`, `75.4s`, `754s`, `2.1h`.
pub fn secs_short(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        "?".into()
    } else if s < 100.0 {
        format!("{s:.1}s")
    } else if s < 10_000.0 {
        format!("{s:.0}s")
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(num(0), "0");
        assert_eq!(num(999), "999");
        assert_eq!(num(1000), "1,000");
        assert_eq!(num(1_234_567), "1,234,567");
        assert_eq!(bytes(48213), "48,213 bytes");
        assert_eq!(mb(27_000_000), "27.0 MB");
        assert_eq!(secs_short(4.04), "4.0s");
        assert_eq!(secs_short(75.4), "75.4s");
        assert_eq!(secs_short(754.4), "754s");
        assert_eq!(secs_short(7200.0 * 2.0), "4.0h");
        assert_eq!(secs_short(f64::NAN), "?");
    }
}
