//! NSS key log parser: the session secrets that let [`super::TlsDecryptor`] read HTTPS pushes.
//!
//! Servers and clients write one line per secret when `SSLKEYLOGFILE` (or an equivalent) is set:
//! `LABEL <client_random hex> <secret hex>`. The labels read here are `CLIENT_RANDOM` (TLS 1.2
//! master secret, 48 bytes) and the TLS 1.3 traffic secrets `CLIENT_HANDSHAKE_TRAFFIC_SECRET`,
//! `SERVER_HANDSHAKE_TRAFFIC_SECRET`, `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0`
//! (32 or 48 bytes, the suite's hash length). `EXPORTER_SECRET`, `EARLY_EXPORTER_SECRET`,
//! `CLIENT_EARLY_TRAFFIC_SECRET`, `RSA` and OpenSSL's `CLIENT_TRAFFIC_SECRET_N` /
//! `SERVER_TRAFFIC_SECRET_N` are known and ignored (exporters are not traffic keys; 0-RTT data
//! is not decrypted; an `RSA` pre-master line comes with the session's `CLIENT_RANDOM` line;
//! secrets after a KeyUpdate are derived from `*_TRAFFIC_SECRET_0`). Comments (`#`) and blank lines are skipped silently; every other line
//! that does not parse is a [`KeyLogWarning`] with its line number, and the rest of the file is
//! still read.
//!
//! Incremental: [`KeyLog::feed`] takes any slice of the file (a growing file is re-read by
//! feeding the bytes appended since the last read); a line is only parsed once its newline has
//! come, [`KeyLog::finish`] parses a last line without one. Bounded: a line longer than
//! [`MAX_LINE`] is skipped with a warning, at most `max_sessions` client randoms are kept,
//! at most [`MAX_WARNINGS`] warnings (the rest counted). Sans-IO: the shell reads the file.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

/// The 32-byte ClientHello.random a key log line is keyed by.
pub type ClientRandom = [u8; 32];

/// Longest line kept (the longest valid line is about 31 + 1 + 64 + 1 + 96 bytes).
pub const MAX_LINE: usize = 1024;

/// Warnings kept; later ones are counted in [`KeyLog::warnings_dropped`].
pub const MAX_WARNINGS: usize = 64;

/// One secret from the log. `Debug` does not print it (logs and panics must not leak keys).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// The secret's bytes, for key derivation.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// The labels this parser keeps, one per secret a session may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Label {
    /// TLS 1.2 master secret (`CLIENT_RANDOM`).
    ClientRandom,
    ClientHandshakeTrafficSecret,
    ServerHandshakeTrafficSecret,
    ClientTrafficSecret0,
    ServerTrafficSecret0,
}

impl Label {
    /// The label as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::ClientRandom => "CLIENT_RANDOM",
            Label::ClientHandshakeTrafficSecret => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            Label::ServerHandshakeTrafficSecret => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            Label::ClientTrafficSecret0 => "CLIENT_TRAFFIC_SECRET_0",
            Label::ServerTrafficSecret0 => "SERVER_TRAFFIC_SECRET_0",
        }
    }

    fn parse(s: &[u8]) -> Option<Option<Label>> {
        Some(Some(match s {
            b"CLIENT_RANDOM" => Label::ClientRandom,
            b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Label::ClientHandshakeTrafficSecret,
            b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => Label::ServerHandshakeTrafficSecret,
            b"CLIENT_TRAFFIC_SECRET_0" => Label::ClientTrafficSecret0,
            b"SERVER_TRAFFIC_SECRET_0" => Label::ServerTrafficSecret0,
            // Valid labels this tool has no use for (`RSA`: the pre-master secret of an RSA key
            // exchange, keyed by the encrypted pre-master's first 8 bytes; OpenSSL writes the
            // CLIENT_RANDOM line of the same session too). OpenSSL also logs
            // `*_TRAFFIC_SECRET_N` (a literal N) after each KeyUpdate: the decryptor derives
            // those itself from `*_TRAFFIC_SECRET_0`.
            b"EXPORTER_SECRET"
            | b"CLIENT_EARLY_TRAFFIC_SECRET"
            | b"EARLY_EXPORTER_SECRET"
            | b"RSA"
            | b"CLIENT_TRAFFIC_SECRET_N"
            | b"SERVER_TRAFFIC_SECRET_N" => return Some(None),
            _ => return None,
        }))
    }

    /// Lengths a secret of this label may have.
    fn valid_len(self, n: usize) -> bool {
        match self {
            Label::ClientRandom => n == 48,
            _ => n == 32 || n == 48,
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The secrets the log holds for one client random (any of them may be missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSecrets {
    /// TLS 1.2 master secret.
    pub master_secret: Option<Secret>,
    pub client_handshake: Option<Secret>,
    pub server_handshake: Option<Secret>,
    pub client_traffic_0: Option<Secret>,
    pub server_traffic_0: Option<Secret>,
}

impl SessionSecrets {
    fn slot(&mut self, label: Label) -> &mut Option<Secret> {
        match label {
            Label::ClientRandom => &mut self.master_secret,
            Label::ClientHandshakeTrafficSecret => &mut self.client_handshake,
            Label::ServerHandshakeTrafficSecret => &mut self.server_handshake,
            Label::ClientTrafficSecret0 => &mut self.client_traffic_0,
            Label::ServerTrafficSecret0 => &mut self.server_traffic_0,
        }
    }

    /// The secret of `label`, if logged.
    pub fn get(&self, label: Label) -> Option<&Secret> {
        match label {
            Label::ClientRandom => self.master_secret.as_ref(),
            Label::ClientHandshakeTrafficSecret => self.client_handshake.as_ref(),
            Label::ServerHandshakeTrafficSecret => self.server_handshake.as_ref(),
            Label::ClientTrafficSecret0 => self.client_traffic_0.as_ref(),
            Label::ServerTrafficSecret0 => self.server_traffic_0.as_ref(),
        }
    }
}

/// Why a line of the key log was not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum KeyLogProblem {
    /// The first word is not a key log label (`label`: its first 32 bytes, printable).
    UnknownLabel { label: String },
    /// Fewer than three words.
    MissingField,
    /// More than three words.
    ExtraField,
    /// The client random is not 64 hex digits.
    BadClientRandom,
    /// The secret is not hex, or not of a length the label allows (`len`: bytes when hex).
    BadSecret { label: Label, len: Option<usize> },
    /// A second, different secret for the same label and client random: the first is kept.
    Conflicting { label: Label },
    /// The line is longer than [`MAX_LINE`] bytes.
    LineTooLong,
    /// `max_sessions` client randoms are already kept: this one is dropped.
    TooManySessions,
}

/// A located [`KeyLogProblem`]: `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyLogWarning {
    pub line: u64,
    pub problem: KeyLogProblem,
}

impl std::fmt::Display for KeyLogWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key log line {}: ", self.line)?;
        match &self.problem {
            KeyLogProblem::UnknownLabel { label } => {
                write!(f, "unknown label {label:?}; line skipped")
            }
            KeyLogProblem::MissingField => {
                f.write_str("expected LABEL CLIENT_RANDOM SECRET; line skipped")
            }
            KeyLogProblem::ExtraField => {
                f.write_str("more than LABEL CLIENT_RANDOM SECRET; line skipped")
            }
            KeyLogProblem::BadClientRandom => {
                f.write_str("the client random is not 64 hex digits; line skipped")
            }
            KeyLogProblem::BadSecret {
                label,
                len: Some(n),
            } => write!(
                f,
                "{label} secret of {n} bytes (expected {}); line skipped",
                if *label == Label::ClientRandom {
                    "48"
                } else {
                    "32 or 48"
                }
            ),
            KeyLogProblem::BadSecret { label, len: None } => {
                write!(f, "{label} secret is not hex; line skipped")
            }
            KeyLogProblem::Conflicting { label } => write!(
                f,
                "a second, different {label} for the same client random; the first one is kept"
            ),
            KeyLogProblem::LineTooLong => write!(f, "longer than {MAX_LINE} bytes; skipped"),
            KeyLogProblem::TooManySessions => {
                f.write_str("too many sessions in the key log; this one is not kept")
            }
        }
    }
}

/// Secrets by client random, parsed from an NSS key log fed in pieces.
#[derive(Debug)]
pub struct KeyLog {
    sessions: HashMap<ClientRandom, SessionSecrets>,
    max_sessions: usize,
    /// The line being read (its newline not seen yet).
    partial: Vec<u8>,
    /// The line being read is over [`MAX_LINE`]: skip to its newline.
    skipping: bool,
    /// Lines completed so far.
    lines: u64,
    warnings: Vec<KeyLogWarning>,
    warnings_dropped: u64,
}

impl Default for KeyLog {
    fn default() -> Self {
        KeyLog::new(DEFAULT_MAX_SESSIONS)
    }
}

/// Default bound on the sessions kept (about 300 bytes each: ~80 MB at the limit).
pub const DEFAULT_MAX_SESSIONS: usize = 1 << 18;

impl KeyLog {
    /// An empty key log keeping at most `max_sessions` client randoms.
    pub fn new(max_sessions: usize) -> Self {
        KeyLog {
            sessions: HashMap::new(),
            max_sessions,
            partial: Vec::new(),
            skipping: false,
            lines: 0,
            warnings: Vec::new(),
            warnings_dropped: 0,
        }
    }

    /// A whole key log at once (the replay case).
    pub fn parse(text: &[u8]) -> Self {
        let mut k = KeyLog::default();
        k.feed(text);
        k.finish();
        k
    }

    /// Bytes of the file, in order: the whole file, or what was appended since the last read.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let nl = memchr::memchr(b'\n', bytes);
            let (piece, rest, ended) = match nl {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &bytes[bytes.len()..], false),
            };
            bytes = rest;
            if !self.skipping {
                if self.partial.len() + piece.len() > MAX_LINE {
                    self.skipping = true;
                    self.partial.clear();
                } else {
                    self.partial.extend_from_slice(piece);
                }
            }
            if ended {
                self.end_line();
            }
        }
    }

    /// The input is complete: parse a last line that has no newline.
    pub fn finish(&mut self) {
        if self.skipping || !self.partial.is_empty() {
            self.end_line();
        }
    }

    fn end_line(&mut self) {
        self.lines += 1;
        let line = std::mem::take(&mut self.partial);
        if std::mem::take(&mut self.skipping) {
            self.warn(KeyLogProblem::LineTooLong);
        } else if let Err(p) = self.line(&line) {
            self.warn(p);
        }
        // Keep the allocation.
        self.partial = line;
        self.partial.clear();
    }

    fn warn(&mut self, problem: KeyLogProblem) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(KeyLogWarning {
                line: self.lines,
                problem,
            });
        } else {
            self.warnings_dropped += 1;
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<(), KeyLogProblem> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut words = line
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|w| !w.is_empty());
        let Some(first) = words.next() else {
            return Ok(()); // blank
        };
        if first.starts_with(b"#") {
            return Ok(());
        }
        let label = Label::parse(first).ok_or_else(|| KeyLogProblem::UnknownLabel {
            label: printable(&first[..first.len().min(32)]),
        })?;
        let (Some(random), Some(secret)) = (words.next(), words.next()) else {
            return Err(KeyLogProblem::MissingField);
        };
        if words.next().is_some() {
            return Err(KeyLogProblem::ExtraField);
        }
        let Some(label) = label else {
            return Ok(()); // a label this tool does not use
        };
        let mut cr: ClientRandom = [0; 32];
        hex::decode_to_slice(random, &mut cr).map_err(|_| KeyLogProblem::BadClientRandom)?;
        let secret =
            hex::decode(secret).map_err(|_| KeyLogProblem::BadSecret { label, len: None })?;
        if !label.valid_len(secret.len()) {
            return Err(KeyLogProblem::BadSecret {
                label,
                len: Some(secret.len()),
            });
        }
        if !self.sessions.contains_key(&cr) && self.sessions.len() >= self.max_sessions {
            return Err(KeyLogProblem::TooManySessions);
        }
        let slot = self.sessions.entry(cr).or_default().slot(label);
        match slot {
            Some(old) if old.0 != secret => Err(KeyLogProblem::Conflicting { label }),
            Some(_) => Ok(()),
            None => {
                *slot = Some(Secret(secret));
                Ok(())
            }
        }
    }

    /// The secrets logged for a client random.
    pub fn get(&self, client_random: &ClientRandom) -> Option<&SessionSecrets> {
        self.sessions.get(client_random)
    }

    /// Sessions (client randoms) kept.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// No session kept.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Lines read so far (a last line without newline counts after [`KeyLog::finish`]).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Warnings so far, in line order (at most [`MAX_WARNINGS`]).
    pub fn warnings(&self) -> &[KeyLogWarning] {
        &self.warnings
    }

    /// Warnings not kept because [`MAX_WARNINGS`] were already.
    pub fn warnings_dropped(&self) -> u64 {
        self.warnings_dropped
    }
}

/// Where a decryptor finds the secrets of a session. Looked up when a connection's first
/// encrypted record needs them, so a shell that re-reads a growing key log (sniff) can share
/// one `RwLock<KeyLog>` with every connection.
pub trait KeyLookup {
    /// The secrets of the session whose ClientHello carried `client_random`.
    fn lookup(&self, client_random: &ClientRandom) -> Option<SessionSecrets>;
}

impl KeyLookup for KeyLog {
    fn lookup(&self, client_random: &ClientRandom) -> Option<SessionSecrets> {
        self.get(client_random).cloned()
    }
}

impl<T: KeyLookup> KeyLookup for RwLock<T> {
    fn lookup(&self, client_random: &ClientRandom) -> Option<SessionSecrets> {
        // A writer that panicked left a log that is still a valid map: read it anyway.
        let guard = self.read().unwrap_or_else(|e| e.into_inner());
        guard.lookup(client_random)
    }
}

impl<T: KeyLookup + ?Sized> KeyLookup for Arc<T> {
    fn lookup(&self, client_random: &ClientRandom) -> Option<SessionSecrets> {
        (**self).lookup(client_random)
    }
}

/// A key log shared by every connection of a pipeline (`replay --keylog`, or sniff's growing
/// file behind a lock). A newtype so the pipeline's configuration stays `Debug` and `Clone`.
#[derive(Clone)]
pub struct SharedKeys(pub Arc<dyn KeyLookup + Send + Sync>);

/// The same shared log (one `Arc`): what a view's request compares when it names the keys.
impl PartialEq for SharedKeys {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedKeys {}

impl std::fmt::Debug for SharedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKeys")
    }
}

/// Printable ASCII of `b`, other bytes as '.'.
fn printable(b: &[u8]) -> String {
    b.iter()
        .map(|&c| if c.is_ascii_graphic() { c as char } else { '.' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CR: &str = "f14aeca3a55305971a48e552568a185d4375730256371773eead0329643c6a58";
    const MS: &str = "779ef7cf36fda08b9fd64e23784bbfff8aae760f5f651e50c3c01c2e2e8239f2991d68331d17480993c33d93afe5f5e4";

    fn cr() -> ClientRandom {
        let mut c = [0; 32];
        hex::decode_to_slice(CR, &mut c).unwrap();
        c
    }

    fn kinds(k: &KeyLog) -> Vec<(u64, KeyLogProblem)> {
        k.warnings()
            .iter()
            .map(|w| (w.line, w.problem.clone()))
            .collect()
    }

    #[test]
    fn reads_tls12_and_tls13_lines_and_skips_comments() {
        let s32 = "ab".repeat(32);
        let text = format!(
            "# TLS secrets log file\n\nCLIENT_RANDOM {CR} {MS}\r\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {cr2} {s32}\n\
             EXPORTER_SECRET {cr2} {s32}\n\
             RSA 3f7712753da20445 {MS}\n\
             CLIENT_TRAFFIC_SECRET_0 {cr2} {s32}",
            cr2 = "11".repeat(32)
        );
        let k = KeyLog::parse(text.as_bytes());
        assert_eq!(kinds(&k), vec![]);
        assert_eq!(k.len(), 2);
        let s = k.get(&cr()).unwrap();
        assert_eq!(
            s.master_secret.as_ref().unwrap().bytes(),
            &hex::decode(MS).unwrap()[..]
        );
        let t = k.get(&[0x11; 32]).unwrap();
        assert_eq!(t.server_handshake.as_ref().unwrap().bytes(), &[0xab; 32]);
        assert_eq!(t.client_traffic_0.as_ref().unwrap().bytes(), &[0xab; 32]);
        assert!(t.client_handshake.is_none() && t.master_secret.is_none());
        assert_eq!(k.lines(), 7);
    }

    #[test]
    fn bad_lines_are_located_warnings_and_the_rest_is_read() {
        let long = "A".repeat(MAX_LINE + 10);
        let text = format!(
            "garbage here\nCLIENT_RANDOM {CR}\nCLIENT_RANDOM zz {MS}\nCLIENT_RANDOM {CR} abcd\n\
             CLIENT_RANDOM {CR} xyz\n{long}\nCLIENT_RANDOM {CR} {MS} extra\n\
             CLIENT_RANDOM {CR} {MS}\nCLIENT_RANDOM {CR} {other}\n",
            other = "00".repeat(48)
        );
        let k = KeyLog::parse(text.as_bytes());
        let cr_label = Label::ClientRandom;
        assert_eq!(
            kinds(&k),
            vec![
                (
                    1,
                    KeyLogProblem::UnknownLabel {
                        label: "garbage".into()
                    }
                ),
                (2, KeyLogProblem::MissingField),
                (3, KeyLogProblem::BadClientRandom),
                (
                    4,
                    KeyLogProblem::BadSecret {
                        label: cr_label,
                        len: Some(2)
                    }
                ),
                (
                    5,
                    KeyLogProblem::BadSecret {
                        label: cr_label,
                        len: None
                    }
                ),
                (6, KeyLogProblem::LineTooLong),
                (7, KeyLogProblem::ExtraField),
                (9, KeyLogProblem::Conflicting { label: cr_label }),
            ]
        );
        // Line 8 is good; the conflicting line 9 does not replace it.
        assert_eq!(
            k.get(&cr())
                .unwrap()
                .master_secret
                .as_ref()
                .unwrap()
                .bytes(),
            &hex::decode(MS).unwrap()[..]
        );
    }

    #[test]
    fn a_growing_file_fed_in_pieces_gives_the_same_log() {
        let text = format!("# c\nCLIENT_RANDOM {CR} {MS}\nnonsense\n");
        for cut in 0..text.len() {
            let mut k = KeyLog::default();
            k.feed(&text.as_bytes()[..cut]);
            // A line without its newline is not parsed yet.
            k.feed(&text.as_bytes()[cut..]);
            assert_eq!(k.len(), 1, "cut {cut}");
            assert_eq!(kinds(&k).len(), 1, "cut {cut}");
            assert_eq!(k.warnings()[0].line, 3, "cut {cut}");
        }
        let mut k = KeyLog::default();
        k.feed(format!("CLIENT_RANDOM {CR} {MS}").as_bytes());
        assert!(k.is_empty(), "half a line (no newline yet) is not used");
        k.finish();
        assert_eq!(k.len(), 1);
    }

    #[test]
    fn sessions_and_warnings_are_bounded() {
        let mut k = KeyLog::new(2);
        for i in 0..3u8 {
            k.feed(format!("CLIENT_RANDOM {} {MS}\n", hex::encode([i; 32])).as_bytes());
        }
        assert_eq!(k.len(), 2);
        assert_eq!(kinds(&k), vec![(3, KeyLogProblem::TooManySessions)]);
        let mut k = KeyLog::default();
        for _ in 0..MAX_WARNINGS + 5 {
            k.feed(b"x y z\n");
        }
        assert_eq!(k.warnings().len(), MAX_WARNINGS);
        assert_eq!(k.warnings_dropped(), 5);
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let k = KeyLog::parse(format!("CLIENT_RANDOM {CR} {MS}\n").as_bytes());
        let dbg = format!("{:?}", k.get(&cr()));
        assert!(!dbg.contains("779e"), "{dbg}");
    }
}
