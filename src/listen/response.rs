//! The listener's answers: status line, headers and a small ISAPI `ResponseStatus` body.

use std::time::{SystemTime, UNIX_EPOCH};

/// Reason phrase for the statuses the listener sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate) for seconds since the epoch.
pub fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Reuse the Timestamp formatter for the civil date, then reshape it.
    let civil = crate::time::Timestamp(secs.saturating_mul(1_000_000_000)).to_utc_string();
    let year = civil.get(0..4).unwrap_or("1970");
    let month: usize = civil.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day = civil.get(8..10).unwrap_or("01");
    let wd = DAYS
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Thu");
    let mon = MONTHS
        .get(month.saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{wd}, {day} {mon} {year} {:02}:{:02}:{:02} GMT",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// The current time as an HTTP date.
pub fn now_http_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    http_date(secs)
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A built response: the bytes to send and the headers as recorded in the exchange.
pub struct Built {
    pub bytes: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub body_bytes: u64,
}

/// Build a final response. The body is an ISAPI `ResponseStatus` (statusCode 1 = OK, 4 = failed)
/// naming the request path (capped, escaped).
pub fn build(status: u16, path: &str, keep_alive: bool) -> Built {
    build_with(status, path, keep_alive, None)
}

/// [`build`] with a `WWW-Authenticate` challenge (the 401 of `listen --auth`).
pub fn build_with(
    status: u16,
    path: &str,
    keep_alive: bool,
    www_authenticate: Option<String>,
) -> Built {
    let ok = (200..300).contains(&status);
    let mut url: String = path.chars().take(200).collect();
    url = xml_escape(&url);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<ResponseStatus version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\"><requestURL>{url}</requestURL><statusCode>{}</statusCode><statusString>{}</statusString><subStatusCode>{}</subStatusCode></ResponseStatus>\r\n",
        if ok { 1 } else { 4 },
        reason(status),
        if ok { "ok" } else { "error" },
    );
    let mut headers = vec![
        ("Date".to_string(), now_http_date()),
        ("Server".to_string(), "alarmscope".to_string()),
        (
            "Content-Type".to_string(),
            "application/xml; charset=\"UTF-8\"".to_string(),
        ),
        ("Content-Length".to_string(), body.len().to_string()),
        (
            "Connection".to_string(),
            if keep_alive { "keep-alive" } else { "close" }.to_string(),
        ),
    ];
    if let Some(w) = www_authenticate {
        headers.push(("WWW-Authenticate".to_string(), w));
    }
    let mut bytes = Vec::with_capacity(256 + body.len());
    bytes.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    for (k, v) in &headers {
        bytes.extend_from_slice(k.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(v.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body.as_bytes());
    Built {
        bytes,
        headers,
        body_bytes: body.len() as u64,
    }
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_match_known_values() {
        // RFC 9110's example.
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // 2024-02-29 12:34:56 UTC was a Thursday.
        assert_eq!(http_date(1_709_210_096), "Thu, 29 Feb 2024 12:34:56 GMT");
    }

    #[test]
    fn response_has_exact_length_and_escaped_path() {
        let b = build(200, "/a<b>&\"", false);
        let text = String::from_utf8(b.bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nDate: "));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("\r\nConnection: close"));
        assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
        assert_eq!(b.body_bytes, body.len() as u64);
        assert!(body.contains("<requestURL>/a&lt;b&gt;&amp;&quot;</requestURL>"));
        assert!(body.contains("<statusCode>1</statusCode>"));
        let e = String::from_utf8(build(503, "/", true).bytes).unwrap();
        assert!(e.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(e.contains("<statusCode>4</statusCode>"));
        assert!(e.contains("Connection: keep-alive\r\n"));
    }
}
