//! ISAPI client shell: HTTP(S) with `ureq` (rustls), digest authentication with `digest_auth`,
//! and errors classified into what an engineer can act on.

use std::time::Duration;

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};

use super::hosts::{parse_response_status, sniff_format, DocError, ResponseStatus};

/// Why a call to the device failed, in the engineer's terms.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device unreachable at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("no answer from {url} within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("TLS problem talking to {url}: {detail}")]
    Tls { url: String, detail: String },
    #[error("wrong user name or password for {user:?} (401 after digest authentication){detail}")]
    WrongPassword { user: String, detail: String },
    #[error(
        "the device asks for {offered}, not digest authentication; alarmscope only does digest"
    )]
    NoDigest { offered: String },
    #[error("forbidden (403) on {path}: the user lacks the parameter-configuration permission (NVRs often refuse these calls){detail}")]
    Forbidden { path: String, detail: String },
    #[error("not supported by this device: {path} ({detail})")]
    NotSupported { path: String, detail: String },
    #[error("not an ISAPI device? {detail}")]
    NotIsapi { detail: String },
    #[error("the device refused the change: {0}")]
    Status(String),
    #[error("HTTP {status} on {path}{detail}")]
    Http {
        status: u16,
        path: String,
        detail: String,
    },
    #[error("cannot read the device's answer: {0}")]
    Doc(#[from] DocError),
    #[error("{0}")]
    Usage(String),
}

/// A raw answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Turn a non-2xx answer into an error (pure, for tests).
pub fn classify(path: &str, a: &Answer) -> DeviceError {
    let rs = parse_response_status(&a.body);
    let detail = rs
        .as_ref()
        .map(|r| format!(": {}", r.describe()))
        .unwrap_or_default();
    let not_supported = rs.as_ref().is_some_and(|r| {
        r.sub_status_code.eq_ignore_ascii_case("notSupport")
            || r.status_code == Some(4) && r.sub_status_code.is_empty()
    });
    match a.status {
        403 => DeviceError::Forbidden {
            path: path.into(),
            detail,
        },
        404 if rs.is_some() || sniff_format(&a.body).is_some() => DeviceError::NotSupported {
            path: path.into(),
            detail: detail
                .trim_start_matches(": ")
                .to_string()
                .or_if_empty("404"),
        },
        404 => DeviceError::NotIsapi {
            detail: format!("{path} answered 404 without an ISAPI document"),
        },
        _ if not_supported => DeviceError::NotSupported {
            path: path.into(),
            detail: detail.trim_start_matches(": ").to_string(),
        },
        s => DeviceError::Http {
            status: s,
            path: path.into(),
            detail,
        },
    }
}

trait OrIfEmpty {
    fn or_if_empty(self, d: &str) -> String;
}
impl OrIfEmpty for String {
    fn or_if_empty(self, d: &str) -> String {
        if self.is_empty() {
            d.to_string()
        } else {
            self
        }
    }
}

/// Extra text from a 401 body (`userCheck`: lock status, retries left).
pub fn lock_hint(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let get = |el: &str| {
        let open = format!("<{el}>");
        let i = s.find(&open)?.checked_add(open.len())?;
        let rest = s.get(i..)?;
        let j = rest.find('<')?;
        rest.get(..j).map(str::trim).map(str::to_string)
    };
    let mut out = String::new();
    if let Some(l) = get("lockStatus") {
        if l != "unlock" {
            out.push_str(&format!("; the account is {l}"));
            if let Some(t) = get("unlockTime") {
                out.push_str(&format!(" for {t} s"));
            }
        }
    }
    if let Some(r) = get("retryLoginTime") {
        out.push_str(&format!(
            "; {r} tries left before the device locks the user"
        ));
    }
    out
}

/// A long-lived answer being read (see [`IsapiClient::open_stream`]).
pub struct StreamAnswer {
    pub content_type: String,
    pub body: Box<dyn std::io::Read + Send>,
}

/// A connection to one device's ISAPI.
pub struct IsapiClient {
    base: String,
    user: String,
    password: String,
    agent: ureq::Agent,
    prompt: Option<WwwAuthenticateHeader>,
    timeout_secs: u64,
}

impl IsapiClient {
    /// `device` is `http(s)://IP[:PORT]`; `insecure` accepts self-signed certificates.
    pub fn new(
        device: &str,
        user: &str,
        password: &str,
        insecure: bool,
        timeout: Duration,
    ) -> Result<Self, DeviceError> {
        let base = device.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(DeviceError::Usage(format!(
                "--device must start with http:// or https:// (got {device:?})"
            )));
        }
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(insecure)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .user_agent("alarmscope")
            .tls_config(tls)
            .build()
            .into();
        Ok(IsapiClient {
            base,
            user: user.into(),
            password: password.into(),
            agent,
            prompt: None,
            timeout_secs: timeout.as_secs(),
        })
    }

    fn url(&self, target: &str) -> String {
        format!("{}{}", self.base, target)
    }

    fn map_err(&self, target: &str, e: ureq::Error) -> DeviceError {
        let url = self.url(target);
        match e {
            ureq::Error::Timeout(_) => DeviceError::Timeout {
                url,
                secs: self.timeout_secs,
            },
            ureq::Error::HostNotFound => DeviceError::Unreachable {
                url,
                detail: "host name not found".into(),
            },
            ureq::Error::ConnectionFailed => DeviceError::Unreachable {
                url,
                detail: "connection failed".into(),
            },
            ureq::Error::Io(io) => {
                let detail = match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        "connection refused (nothing listens on that port)".to_string()
                    }
                    std::io::ErrorKind::TimedOut => "connect timed out".to_string(),
                    _ => io.to_string(),
                };
                let refused = matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
                );
                if self.base.starts_with("https://") && !refused {
                    DeviceError::Tls {
                        url,
                        detail: format!("{io} (the port may not speak HTTPS: try http://)"),
                    }
                } else {
                    DeviceError::Unreachable { url, detail }
                }
            }
            ureq::Error::Tls(t) => DeviceError::Tls {
                url,
                detail: t.to_string(),
            },
            ureq::Error::Rustls(r) => {
                let s = r.to_string();
                let hint = if s.contains("certificate") || s.contains("Certificate") {
                    " (devices usually have self-signed certificates: add --insecure if you trust this network)"
                } else if s.contains("corrupt") || s.contains("InvalidContentType") {
                    " (the port may speak plain HTTP: try http://)"
                } else {
                    ""
                };
                DeviceError::Tls {
                    url,
                    detail: format!("{s}{hint}"),
                }
            }
            ureq::Error::Protocol(p) => DeviceError::NotIsapi {
                detail: format!(
                    "{url} did not answer in HTTP ({p}){}",
                    if self.base.starts_with("http://") {
                        "; if the port is HTTPS use https://"
                    } else {
                        ""
                    }
                ),
            },
            other => DeviceError::Unreachable {
                url,
                detail: other.to_string(),
            },
        }
    }

    fn send(
        &self,
        method: &str,
        target: &str,
        body: Option<(&[u8], &str)>,
        auth: Option<&str>,
    ) -> Result<(Answer, Vec<String>), DeviceError> {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(target))
            .header("Accept", "*/*");
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        let res = match body {
            Some((bytes, ct)) => {
                let req = b
                    .header("Content-Type", ct)
                    .body(bytes.to_vec())
                    .map_err(|e| DeviceError::Usage(e.to_string()))?;
                self.agent.run(req)
            }
            None => {
                let req = b.body(()).map_err(|e| DeviceError::Usage(e.to_string()))?;
                self.agent.run(req)
            }
        };
        let mut resp = res.map_err(|e| self.map_err(target, e))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let www: Vec<String> = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(8 << 20)
            .read_to_vec()
            .map_err(|e| self.map_err(target, e))?;
        Ok((
            Answer {
                status,
                content_type,
                body,
            },
            www,
        ))
    }

    fn authorization(&mut self, method: &str, target: &str, body: Option<&[u8]>) -> Option<String> {
        let prompt = self.prompt.as_mut()?;
        let ctx = AuthContext::new_with_method(
            self.user.as_str(),
            self.password.as_str(),
            target,
            body,
            HttpMethod::from(method.to_string()),
        );
        prompt.respond(&ctx).ok().map(|h| h.to_string())
    }

    /// One request with digest authentication (reusing the last challenge when the device allows).
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Answer, DeviceError> {
        let mut fresh = false;
        for _ in 0..3 {
            let auth = self.authorization(method, target, body.map(|b| b.0));
            let (answer, www) = self.send(method, target, body, auth.as_deref())?;
            if answer.status != 401 {
                return Ok(answer);
            }
            if fresh {
                return Err(DeviceError::WrongPassword {
                    user: self.user.clone(),
                    detail: lock_hint(&answer.body),
                });
            }
            let digest = www
                .iter()
                .find(|w| w.trim_start().to_ascii_lowercase().starts_with("digest"));
            match digest {
                Some(d) => match WwwAuthenticateHeader::parse(d) {
                    Ok(p) => {
                        self.prompt = Some(p);
                        fresh = true;
                    }
                    Err(e) => {
                        return Err(DeviceError::NotIsapi {
                            detail: format!("unreadable digest challenge {d:?}: {e}"),
                        })
                    }
                },
                None if www.is_empty() => {
                    return Err(DeviceError::NotIsapi {
                        detail: format!(
                            "{target} answered 401 without a WWW-Authenticate challenge"
                        ),
                    })
                }
                None => {
                    return Err(DeviceError::NoDigest {
                        offered: www.join(", "),
                    })
                }
            }
        }
        Err(DeviceError::WrongPassword {
            user: self.user.clone(),
            detail: String::new(),
        })
    }

    /// Open a long-lived GET (the alertStream) with digest authentication: the answer's status
    /// and Content-Type, and its body as a reader that yields bytes as the device sends them.
    /// The whole call, reading included, ends after `max` (the caller reconnects).
    pub fn open_stream(
        &mut self,
        target: &str,
        max: Duration,
    ) -> Result<StreamAnswer, DeviceError> {
        let mut fresh = false;
        for _ in 0..3 {
            let auth = self.authorization("GET", target, None);
            let mut b = ureq::http::Request::builder()
                .method("GET")
                .uri(self.url(target))
                .header("Accept", "*/*");
            if let Some(a) = &auth {
                b = b.header("Authorization", a.as_str());
            }
            let req = b.body(()).map_err(|e| DeviceError::Usage(e.to_string()))?;
            let req = self
                .agent
                .configure_request(req)
                .timeout_global(Some(max))
                .build();
            let mut resp = self.agent.run(req).map_err(|e| self.map_err(target, e))?;
            let status = resp.status().as_u16();
            let header = |n: &str| {
                resp.headers()
                    .get_all(n)
                    .iter()
                    .filter_map(|v| v.to_str().ok().map(str::to_string))
                    .collect::<Vec<_>>()
            };
            let content_type = header("content-type")
                .into_iter()
                .next()
                .unwrap_or_default();
            let www = header("www-authenticate");
            if status != 401 {
                if !(200..300).contains(&status) {
                    let body = resp
                        .body_mut()
                        .with_config()
                        .limit(1 << 20)
                        .read_to_vec()
                        .unwrap_or_default();
                    let a = Answer {
                        status,
                        content_type,
                        body,
                    };
                    return Err(classify(target, &a));
                }
                return Ok(StreamAnswer {
                    content_type,
                    body: Box::new(resp.into_body().into_reader()),
                });
            }
            if fresh {
                return Err(DeviceError::WrongPassword {
                    user: self.user.clone(),
                    detail: String::new(),
                });
            }
            let digest = www
                .iter()
                .find(|w| w.trim_start().to_ascii_lowercase().starts_with("digest"));
            match digest.map(|d| WwwAuthenticateHeader::parse(d)) {
                Some(Ok(p)) => {
                    self.prompt = Some(p);
                    fresh = true;
                }
                _ => {
                    return Err(DeviceError::NoDigest {
                        offered: www.join(", "),
                    })
                }
            }
        }
        Err(DeviceError::WrongPassword {
            user: self.user.clone(),
            detail: String::new(),
        })
    }

    /// Request that must succeed with an XML or JSON document.
    pub fn document(
        &mut self,
        method: &str,
        target: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Answer, DeviceError> {
        let a = self.request(method, target, body)?;
        let path = target.split('?').next().unwrap_or(target);
        if !a.is_success() {
            return Err(classify(path, &a));
        }
        if sniff_format(&a.body).is_none() {
            let head: String =
                String::from_utf8_lossy(a.body.get(..a.body.len().min(80)).unwrap_or_default())
                    .into_owned();
            return Err(DeviceError::NotIsapi {
                detail: format!(
                    "{path} answered {} with neither XML nor JSON: {head:?}",
                    a.content_type
                ),
            });
        }
        Ok(a)
    }
}

/// Check a PUT's `ResponseStatus`: non-OK is an error with the device's text.
pub fn check_status(a: &Answer) -> Result<ResponseStatus, DeviceError> {
    match parse_response_status(&a.body) {
        Some(rs) if rs.is_ok() => Ok(rs),
        Some(rs) => Err(DeviceError::Status(rs.describe())),
        None if a.is_success() => Ok(ResponseStatus {
            status_code: None,
            status_string: "(no ResponseStatus)".into(),
            ..Default::default()
        }),
        None => Err(DeviceError::Http {
            status: a.status,
            path: String::new(),
            detail: String::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(status: u16, body: &str) -> Answer {
        Answer {
            status,
            content_type: "application/xml".into(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn classifies_device_answers() {
        let rs404 = "<ResponseStatus><statusCode>4</statusCode><statusString>Invalid Operation</statusString><subStatusCode>notSupport</subStatusCode></ResponseStatus>";
        assert!(matches!(
            classify("/p", &ans(404, rs404)),
            DeviceError::NotSupported { .. }
        ));
        assert!(matches!(
            classify("/p", &ans(404, "<html>nope</html>")),
            DeviceError::NotSupported { .. }
        ));
        assert!(matches!(
            classify("/p", &ans(404, "Not Found")),
            DeviceError::NotIsapi { .. }
        ));
        assert!(matches!(
            classify("/p", &ans(403, "")),
            DeviceError::Forbidden { .. }
        ));
        assert!(matches!(
            classify("/p", &ans(400, rs404)),
            DeviceError::NotSupported { .. }
        ));
        match classify("/p/1/test", &ans(500, "")) {
            DeviceError::Http { status, .. } => assert_eq!(status, 500),
            other => panic!("{other:?}"),
        }
        let e = classify("/p", &ans(403, "<ResponseStatus><statusCode>4</statusCode><subStatusCode>lowPrivilege</subStatusCode></ResponseStatus>"));
        assert!(e.to_string().contains("subStatusCode lowPrivilege"), "{e}");
    }

    #[test]
    fn status_check() {
        let ok = ans(200, "<ResponseStatus><statusCode>1</statusCode><statusString>OK</statusString></ResponseStatus>");
        assert!(check_status(&ok).is_ok());
        let bad = ans(400, "<ResponseStatus><statusCode>6</statusCode><statusString>Invalid Content</statusString><subStatusCode>badParameters</subStatusCode></ResponseStatus>");
        assert_eq!(
            check_status(&bad).unwrap_err().to_string(),
            "the device refused the change: statusCode 6 (Invalid Content), subStatusCode badParameters"
        );
    }

    #[test]
    fn lock_hints() {
        let b = "<userCheck><statusValue>401</statusValue><lockStatus>lock</lockStatus><unlockTime>1800</unlockTime><retryLoginTime>0</retryLoginTime></userCheck>";
        assert_eq!(
            lock_hint(b.as_bytes()),
            "; the account is lock for 1800 s; 0 tries left before the device locks the user"
        );
        assert_eq!(lock_hint(b"<userCheck><lockStatus>unlock</lockStatus><retryLoginTime>4</retryLoginTime></userCheck>"), "; 4 tries left before the device locks the user");
        assert_eq!(lock_hint(b""), "");
    }

    #[test]
    fn rejects_bad_device_url() {
        assert!(matches!(
            IsapiClient::new("192.0.2.1", "a", "b", false, Duration::from_secs(1)),
            Err(DeviceError::Usage(_))
        ));
    }
}
