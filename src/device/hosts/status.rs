//! The device's answers: `ResponseStatus` after a change, `HttpHostTestResult` after a test.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;

use super::*;

/// The device's answer to a change: `ResponseStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ResponseStatus {
    pub request_url: String,
    pub status_code: Option<i64>,
    pub status_string: String,
    pub sub_status_code: String,
    /// JSON devices add `errorMsg`; XML devices sometimes `description`.
    pub error_msg: String,
}

impl ResponseStatus {
    /// statusCode 1 means OK (some firmware sends 0 or leaves it out with subStatusCode ok).
    pub fn is_ok(&self) -> bool {
        match self.status_code {
            Some(1) | Some(0) => true,
            Some(_) => false,
            None => self.sub_status_code.eq_ignore_ascii_case("ok"),
        }
    }

    /// Readable one-liner: `statusCode 4 (Invalid Operation), subStatusCode notSupport`.
    pub fn describe(&self) -> String {
        let code = self
            .status_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "?".into());
        let mut s = format!("statusCode {code}");
        let text = if self.status_string.is_empty() {
            status_code_meaning(self.status_code.unwrap_or(-1)).to_string()
        } else {
            self.status_string.clone()
        };
        if !text.is_empty() {
            s.push_str(&format!(" ({text})"));
        }
        if !self.sub_status_code.is_empty() {
            s.push_str(&format!(", subStatusCode {}", self.sub_status_code));
        }
        if !self.error_msg.is_empty() {
            s.push_str(&format!(", {}", self.error_msg));
        }
        s
    }
}

/// ISAPI statusCode values.
pub fn status_code_meaning(code: i64) -> &'static str {
    match code {
        0 | 1 => "OK",
        2 => "Device Busy",
        3 => "Device Error",
        4 => "Invalid Operation",
        5 => "Invalid XML Format",
        6 => "Invalid XML Content",
        7 => "Reboot Required",
        _ => "",
    }
}

/// Flat list of (local name, text) of every leaf element / scalar JSON value.
fn leaves(body: &[u8]) -> Result<Vec<(String, String)>, DocError> {
    match sniff_format(body) {
        Some(ApiFormat::Xml) => {
            let mut reader = Reader::from_reader(body);
            let mut out = Vec::new();
            let mut stack: Vec<String> = Vec::new();
            let mut text = String::new();
            loop {
                match reader.read_event().map_err(xml_err)? {
                    Event::Start(e) => {
                        stack.push(e.local_name().as_ref().to_string());
                        text.clear();
                    }
                    Event::Text(t) => text.push_str(&t.xml10_content()),
                    Event::GeneralRef(r) => text.push_str(&text_of_ref(&r)),
                    Event::End(_) => {
                        if let Some(n) = stack.pop() {
                            if !text.trim().is_empty() {
                                out.push((n, text.trim().to_string()));
                            }
                        }
                        text.clear();
                    }
                    Event::Eof => break,
                    _ => {}
                }
            }
            Ok(out)
        }
        Some(ApiFormat::Json) => {
            let v: Value =
                serde_json::from_slice(body).map_err(|e| DocError::Json(e.to_string()))?;
            let mut out = Vec::new();
            fn walk(v: &Value, key: &str, out: &mut Vec<(String, String)>) {
                match v {
                    Value::Object(m) => m.iter().for_each(|(k, c)| walk(c, k, out)),
                    Value::Array(a) => a.iter().for_each(|c| walk(c, key, out)),
                    other => out.push((key.to_string(), json_text(other))),
                }
            }
            walk(&v, "", &mut out);
            Ok(out)
        }
        None => Err(DocError::NotXmlOrJson),
    }
}

/// Parse a `ResponseStatus` (XML, flat JSON or `{"ResponseStatus": {...}}`). None when the body
/// is not one.
pub fn parse_response_status(body: &[u8]) -> Option<ResponseStatus> {
    let items = leaves(body).ok()?;
    let mut rs = ResponseStatus::default();
    let mut seen = false;
    for (k, v) in items {
        match k.as_str() {
            "requestURL" => rs.request_url = v,
            "statusCode" => {
                rs.status_code = v.trim().parse().ok();
                seen = true;
            }
            "statusString" => rs.status_string = v,
            "subStatusCode" => {
                rs.sub_status_code = v;
                seen = true;
            }
            "errorMsg" | "description" => rs.error_msg = v,
            _ => {}
        }
    }
    seen.then_some(rs)
}

/// The answer to `POST .../httpHosts/<id>/test`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TestResult {
    /// Error text when the device reports one (e.g. "connect server fail").
    pub error: String,
    /// Every leaf of the answer, for display.
    pub items: Vec<(String, String)>,
}

/// Parse an `HttpHostTestResult` leniently: `errorDescription` is the failure text when present
/// and not "ok".
pub fn parse_test_result(body: &[u8]) -> Result<TestResult, DocError> {
    let items = leaves(body)?;
    let error = items
        .iter()
        .find(|(k, v)| {
            (k == "errorDescription" || k == "errorMsg")
                && !v.eq_ignore_ascii_case("ok")
                && !v.is_empty()
        })
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Ok(TestResult { error, items })
}
