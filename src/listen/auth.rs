//! `listen --auth basic|digest`: the listener as an alarm server that requires credentials.
//! Requests without valid credentials are answered 401 with a challenge (digest: MD5, qop=auth,
//! a nonce of ours) and not stored; each exchange records what the device sent as an
//! [`AuthCheck`], so a slot's wrong `httpAuthenticationMethod`, `userName` or `password` shows.
//!
//! Pure: the nonce seed comes from the caller, and checking is a function of the request head.
//! Digest arithmetic is the `digest_auth` crate's.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use base64::Engine as _;
use clap::ValueEnum;
use digest_auth::{AuthContext, AuthorizationHeader, HttpMethod};

pub use crate::model::AuthCheck;

/// The scheme the listener requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthScheme {
    /// `Authorization: Basic` (what slots with `httpAuthenticationMethod` basic send).
    Basic,
    /// `Authorization: Digest` with MD5 (slots with `MD5digest`).
    Digest,
}

/// What `--auth`, `--user` and `--password` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub scheme: AuthScheme,
    pub user: String,
    pub password: String,
    /// Realm named in the challenge.
    pub realm: String,
}

/// Nonces kept valid at once (oldest forgotten first): enough for many devices answering
/// challenges at the same time, bounded memory.
const NONCES: usize = 4096;

/// Checks credentials and issues challenges.
#[derive(Debug)]
pub struct Authenticator {
    cfg: AuthConfig,
    seed: u64,
    counter: AtomicU64,
    nonces: Mutex<VecDeque<String>>,
}

impl Authenticator {
    /// `seed` makes the nonces of one run differ from another's (the shell passes the clock).
    pub fn new(cfg: AuthConfig, seed: u64) -> Self {
        Authenticator {
            cfg,
            seed,
            counter: AtomicU64::new(0),
            nonces: Mutex::new(VecDeque::new()),
        }
    }

    /// The scheme required.
    pub fn scheme(&self) -> AuthScheme {
        self.cfg.scheme
    }

    /// A `WWW-Authenticate` value for a 401; `stale` when the device's nonce was one we no
    /// longer know (so it retries with the new one without asking for a password).
    pub fn challenge(&self, stale: bool) -> String {
        match self.cfg.scheme {
            AuthScheme::Basic => format!("Basic realm=\"{}\"", self.cfg.realm),
            AuthScheme::Digest => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                let nonce = format!(
                    "{:016x}{:016x}",
                    xxhash_rust::xxh3::xxh3_64_with_seed(&n.to_le_bytes(), self.seed),
                    n
                );
                if let Ok(mut q) = self.nonces.lock() {
                    q.push_back(nonce.clone());
                    while q.len() > NONCES {
                        q.pop_front();
                    }
                }
                format!(
                    "Digest realm=\"{}\", qop=\"auth\", algorithm=MD5, nonce=\"{nonce}\", stale={}",
                    self.cfg.realm,
                    if stale { "TRUE" } else { "FALSE" }
                )
            }
        }
    }

    /// Judge a request's `Authorization` header.
    pub fn check(&self, method: &str, uri: &str, authorization: Option<&str>) -> AuthCheck {
        let Some(value) = authorization.map(str::trim) else {
            return AuthCheck::Missing;
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let wanted = match self.cfg.scheme {
            AuthScheme::Basic => "basic",
            AuthScheme::Digest => "digest",
        };
        if !scheme.eq_ignore_ascii_case(wanted) {
            return AuthCheck::WrongScheme;
        }
        match self.cfg.scheme {
            AuthScheme::Basic => {
                let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
                    return AuthCheck::Malformed;
                };
                let text = String::from_utf8_lossy(&raw);
                match text.split_once(':') {
                    Some((u, p)) if u == self.cfg.user && p == self.cfg.password => {
                        AuthCheck::Accepted
                    }
                    Some(_) => AuthCheck::WrongCredentials,
                    None => AuthCheck::Malformed,
                }
            }
            AuthScheme::Digest => self.check_digest(method, uri, value),
        }
    }

    fn check_digest(&self, method: &str, uri: &str, value: &str) -> AuthCheck {
        let Ok(hdr) = AuthorizationHeader::parse(value) else {
            return AuthCheck::Malformed;
        };
        if hdr.uri != uri {
            return AuthCheck::Malformed;
        }
        let known = self
            .nonces
            .lock()
            .map(|q| q.contains(&hdr.nonce))
            .unwrap_or(false);
        if !known {
            return AuthCheck::StaleNonce;
        }
        if hdr.username != self.cfg.user || hdr.realm != self.cfg.realm {
            return AuthCheck::WrongCredentials;
        }
        if digest_matches(&hdr, &self.cfg.password, method, b"") {
            AuthCheck::Accepted
        } else {
            AuthCheck::WrongCredentials
        }
    }
}

/// Whether a digest `Authorization` answers with `password` (RFC 7616, recomputed with
/// `digest_auth` from the header's own nonce, uri, qop and cnonce). The caller checks first that
/// the nonce is one it issued and the user and realm are its own. `body` only matters for
/// `qop=auth-int`.
pub fn digest_matches(
    hdr: &AuthorizationHeader,
    password: &str,
    method: &str,
    body: &[u8],
) -> bool {
    let mut expected = hdr.clone();
    let ctx = AuthContext::new_with_method(
        hdr.username.as_str(),
        password,
        hdr.uri.as_str(),
        Some(body),
        HttpMethod::from(method.to_string()),
    );
    expected.digest(&ctx);
    expected.response == hdr.response
}

#[cfg(test)]
mod tests {
    use super::*;
    use digest_auth::WwwAuthenticateHeader;

    fn auth(scheme: AuthScheme) -> Authenticator {
        Authenticator::new(
            AuthConfig {
                scheme,
                user: "alarm".into(),
                password: "p4ss".into(),
                realm: "alarmscope".into(),
            },
            7,
        )
    }

    fn digest_answer(a: &Authenticator, user: &str, password: &str, uri: &str) -> String {
        let mut prompt = WwwAuthenticateHeader::parse(&a.challenge(false)).unwrap();
        let ctx =
            AuthContext::new_with_method(user, password, uri, None::<&[u8]>, HttpMethod::POST);
        prompt.respond(&ctx).unwrap().to_string()
    }

    #[test]
    fn digest_decisions() {
        let a = auth(AuthScheme::Digest);
        assert_eq!(a.check("POST", "/alarm", None), AuthCheck::Missing);
        let good = digest_answer(&a, "alarm", "p4ss", "/alarm");
        assert_eq!(a.check("POST", "/alarm", Some(&good)), AuthCheck::Accepted);
        let bad = digest_answer(&a, "alarm", "nope", "/alarm");
        assert_eq!(
            a.check("POST", "/alarm", Some(&bad)),
            AuthCheck::WrongCredentials
        );
        let who = digest_answer(&a, "admin", "p4ss", "/alarm");
        assert_eq!(
            a.check("POST", "/alarm", Some(&who)),
            AuthCheck::WrongCredentials
        );
        assert_eq!(
            a.check("POST", "/alarm", Some("Basic YWxhcm06cDRzcw==")),
            AuthCheck::WrongScheme
        );
        // A nonce this listener never issued (a restart, or a made-up one).
        let other = Authenticator::new(a.cfg.clone(), 8);
        let foreign = digest_answer(&other, "alarm", "p4ss", "/alarm");
        assert_eq!(
            a.check("POST", "/alarm", Some(&foreign)),
            AuthCheck::StaleNonce
        );
        assert_eq!(
            a.check("POST", "/alarm", Some("Digest garbage")),
            AuthCheck::Malformed
        );
    }

    #[test]
    fn basic_decisions() {
        let a = auth(AuthScheme::Basic);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let ok = format!("Basic {}", b64("alarm:p4ss"));
        assert_eq!(a.check("POST", "/", Some(&ok)), AuthCheck::Accepted);
        let bad = format!("Basic {}", b64("alarm:x"));
        assert_eq!(
            a.check("POST", "/", Some(&bad)),
            AuthCheck::WrongCredentials
        );
        assert_eq!(
            a.check("POST", "/", Some("Basic !!!")),
            AuthCheck::Malformed
        );
        let digest = digest_answer(&auth(AuthScheme::Digest), "alarm", "p4ss", "/");
        assert_eq!(a.check("POST", "/", Some(&digest)), AuthCheck::WrongScheme);
        assert!(a.challenge(false).starts_with("Basic realm="));
    }

    #[test]
    fn nonces_are_fresh_and_bounded() {
        let a = auth(AuthScheme::Digest);
        let first = a.challenge(false);
        assert_ne!(first, a.challenge(false));
        assert!(first.contains("qop=\"auth\"") && first.contains("algorithm=MD5"));
        for _ in 0..NONCES + 10 {
            a.challenge(false);
        }
        assert_eq!(a.nonces.lock().unwrap().len(), NONCES);
    }
}
