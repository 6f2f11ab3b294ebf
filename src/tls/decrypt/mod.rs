//! Decryption of one TLS connection with an NSS key log: plaintext per direction for the HTTP
//! decoders, and typed findings where it cannot be had.
//!
//! [`TlsDecryptor`] is fed exactly like [`super::TlsConnection`] (`data(dir, ts, bytes)`,
//! `gap(dir, ts, n)`, `close(ts, how)`, `finish()`), each call with a sink for the
//! [`DecryptEvent`]s it produces: plaintext (`Plain`), holes in the plaintext (`Gap`), the end of
//! a direction's plaintext (`Stopped`) and findings. Rules:
//! - records are framed per direction whatever the TCP boundaries; one record is held at a time
//!   (at most 5 + 2^14 + 2048 bytes per direction), never more;
//! - the cleartext ClientHello gives the client random, the ServerHello the server random, the
//!   version and the suite (parsed with `tls-parser`); the key log is asked for the secrets
//!   when the first encrypted record needs them, so a log that grows (sniff) can still answer;
//! - TLS 1.2: a side encrypts after its ChangeCipherSpec; keys come from the master secret
//!   (PRF key block). TLS 1.3: both sides encrypt after the ServerHello; handshake secrets
//!   until each side's Finished, then the application secrets; KeyUpdate is followed;
//!   ChangeCipherSpec compatibility records are skipped; the inner content type and padding are
//!   stripped;
//! - only authenticated plaintext is handed on: a record that fails is a located finding and a
//!   `Gap`, never output. A capture gap inside one record loses that record only (the TCP
//!   sequence numbers keep the framing exact); a gap across records is resynchronised only when
//!   a later record authenticates under the expected key and a bounded range of sequence
//!   numbers (the tag proves framing and position); otherwise the direction stops;
//! - refused (finding `UnsupportedSuite`): CBC, CCM, legacy suites and versions below TLS 1.2
//!   (see [`Refusal`]); TLS 1.3 0-RTT early data is not decrypted (finding `EarlyData`); TLS
//!   1.2 renegotiation stops the direction.
//!
//! Sans-IO: the key log is looked up in memory through [`KeyLookup`]; no clock, file or socket.

mod finding;
mod keys;
mod outcome;

use std::sync::Arc;

use serde::Serialize;
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

pub use finding::{DecryptFinding, GapOutcome};
pub use keys::{Aead, Hash, Refusal};
pub use outcome::{DecryptionCounts, NotDecryptedCounts, NotDecryptedReason};

use keys::{RecordKey, Suite};

use super::keylog::{ClientRandom, KeyLookup, Label, SessionSecrets};
use super::types::{AlertDescription, AlertLevel, CipherSuite, PerDirection, ProtocolVersion};
use super::wire::{
    CT_ALERT, CT_APP_DATA, CT_CCS, CT_HANDSHAKE, HRR_RANDOM, HS_CLIENT_HELLO, HS_FINISHED,
    HS_KEY_UPDATE, HS_SERVER_HELLO,
};
use crate::tcp::{CloseKind, Direction, Side};
use crate::time::Timestamp;

/// Largest record body accepted (TLS 1.2 ciphertext: 2^14 + 2048), as for the keyless analysis.
const MAX_BODY: usize = super::MAX_RECORD_LEN as usize;

/// Candidate records tried per resync before the direction stops.
const MAX_CANDIDATES: u32 = 64;

/// Limits of the decryptor, per connection.
#[derive(Debug, Clone)]
pub struct DecryptConfig {
    /// Largest cleartext hello reassembled (a ClientHello with post-quantum key shares is
    /// about 2 KiB).
    pub max_hello: usize,
    /// Findings kept (all are also emitted as events); further ones are counted.
    pub max_findings: usize,
    /// Bytes scanned for an authenticating record after a gap before the direction stops.
    pub resync_window: u64,
    /// Sequence numbers tried per candidate record when resynchronising.
    pub max_seq_trials: u64,
}

impl Default for DecryptConfig {
    fn default() -> Self {
        DecryptConfig {
            max_hello: 16 << 10,
            max_findings: 32,
            resync_window: 64 << 10,
            max_seq_trials: 256,
        }
    }
}

/// What the decryptor hands on, in stream order per direction.
#[derive(Debug, PartialEq)]
pub enum DecryptEvent<'a> {
    /// Authenticated application data of `dir` (what the HTTP decoders read), from the record
    /// at `record` (TCP stream offsets of its header and its end, gaps counted): where the
    /// follow-stream view puts the plaintext in place of the record's bytes.
    Plain {
        dir: Direction,
        ts: Timestamp,
        bytes: &'a [u8],
        record: std::ops::Range<u64>,
    },
    /// Plaintext of `dir` is missing here: `bytes` long when `exact`, else at most `bytes`.
    Gap {
        dir: Direction,
        ts: Timestamp,
        bytes: u64,
        exact: bool,
    },
    /// Nothing more of `dir` will be decrypted (the finding before says why); what follows on
    /// the wire is unknown.
    Stopped { dir: Direction, ts: Timestamp },
    /// A finding (also kept, see [`TlsDecryptor::findings`]).
    Finding(DecryptFinding),
}

/// Where decryption of the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecryptStatus {
    /// No encrypted record has needed a key yet.
    Pending,
    /// Keys were found and at least one direction is decrypted.
    Decrypting,
    /// Not decrypted (no handshake seen, no key, refused suite, wrong key): the keyless
    /// analysis of [`super::TlsConnection`] is all there is.
    NotDecrypted,
}

/// Counts of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DecryptStats {
    /// Records framed (cleartext ones included).
    pub records: u64,
    /// Records that authenticated.
    pub decrypted: u64,
    /// Records that failed to authenticate.
    pub failed: u64,
    /// Application-data plaintext bytes handed on.
    pub plaintext_bytes: u64,
}

/// What a finished decryptor hands on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecryptReport {
    pub status: DecryptStatus,
    pub version: Option<ProtocolVersion>,
    pub cipher_suite: Option<CipherSuite>,
    pub stats: PerDirection<DecryptStats>,
    /// In JSON each with `problem` ([`DecryptFinding::is_problem`]) and `text` (its words), as
    /// the connection's `tls_findings`.
    #[serde(serialize_with = "outcome::serialize_findings")]
    pub findings: Vec<DecryptFinding>,
    pub findings_dropped: u64,
}

/// Why a direction looks for a record after losing the framing.
#[derive(Debug, Clone, Copy)]
struct Lost {
    time: Timestamp,
    offset: u64,
    bytes: u64,
    /// Sequence number the next record would have had without the loss.
    base_seq: u64,
}

#[derive(Debug)]
enum Mode {
    /// Framing records.
    Records,
    /// Looking for a record that authenticates; `buf` holds the bytes not yet ruled out,
    /// `tried` counts the candidate headers whose records did not authenticate.
    Resync {
        lost: Lost,
        buf: Vec<u8>,
        scanned: u64,
        tried: u32,
    },
    /// Nothing more is decrypted; bytes are only counted.
    Off,
}

/// TLS 1.3 epoch of a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    Handshake,
    Application,
}

/// Framing of decrypted TLS 1.3 handshake messages (only types and ends are needed).
#[derive(Debug, Default)]
struct HsScan {
    hdr: [u8; 4],
    hdr_len: usize,
    left: u32,
}

impl HsScan {
    /// Feed handshake content; calls `done(msg_type)` for every message that ends here.
    fn feed(&mut self, mut b: &[u8], done: &mut dyn FnMut(u8)) {
        while !b.is_empty() {
            if self.hdr_len < 4 {
                let n = (4 - self.hdr_len).min(b.len());
                self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&b[..n]);
                self.hdr_len += n;
                b = &b[n..];
                if self.hdr_len < 4 {
                    return;
                }
                self.left = u32::from_be_bytes([0, self.hdr[1], self.hdr[2], self.hdr[3]]);
            } else {
                let n = (self.left as usize).min(b.len());
                self.left -= n as u32;
                b = &b[n..];
            }
            if self.left == 0 {
                self.hdr_len = 0;
                done(self.hdr[0]);
            }
        }
    }
}

/// One direction.
#[derive(Debug)]
struct Half {
    mode: Mode,
    /// Stream offset of the next byte (gaps included).
    offset: u64,
    hdr: [u8; 5],
    hdr_len: usize,
    /// Body of the record being read (capacity up to `MAX_BODY`).
    body: Vec<u8>,
    /// A header is complete and `want` body bytes are expected.
    in_record: bool,
    want: usize,
    rec_offset: u64,
    /// Bytes of a record cut by a capture gap still to be skipped (its framing held).
    discard: usize,
    /// Records framed so far (the index of the next one).
    records: u64,
    /// This side encrypts what it sends now.
    encrypted: bool,
    key: Option<RecordKey>,
    /// Keys for this direction are not to be had: encrypted records are skipped.
    no_keys: bool,
    seq: u64,
    epoch: Epoch,
    /// TLS 1.3 traffic secret in force (for KeyUpdate).
    secret: Vec<u8>,
    hs: HsScan,
    /// Cleartext handshake reassembly (hellos only).
    clear: Vec<u8>,
    clear_skip: u64,
    clear_broken: bool,
    fail_streak: u32,
    stats: DecryptStats,
    /// TLS 1.2: this side's encrypted Finished was seen (a later CCS is renegotiation).
    finished: bool,
}

impl Half {
    fn new() -> Self {
        Half {
            mode: Mode::Records,
            offset: 0,
            hdr: [0; 5],
            hdr_len: 0,
            body: Vec::new(),
            in_record: false,
            want: 0,
            rec_offset: 0,
            discard: 0,
            records: 0,
            encrypted: false,
            key: None,
            no_keys: false,
            seq: 0,
            epoch: Epoch::Handshake,
            secret: Vec::new(),
            hs: HsScan::default(),
            clear: Vec::new(),
            clear_skip: 0,
            clear_broken: false,
            fail_streak: 0,
            stats: DecryptStats::default(),
            finished: false,
        }
    }
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

fn sender(dir: Direction) -> Side {
    match dir {
        Direction::ClientToServer => Side::Client,
        Direction::ServerToClient => Side::Server,
    }
}

/// A plausible record header (type 20-24, version 3.x, length within the limit): the keyless
/// analysis' test, not strict.
fn plausible(h: &[u8; 5]) -> bool {
    super::conn::plausible(h, false)
}

/// The event sink every feed method takes.
pub type Sink<'s> = dyn FnMut(DecryptEvent<'_>) + 's;

/// Decrypts one TLS connection. Feed it in capture order like [`super::TlsConnection`].
pub struct TlsDecryptor {
    config: DecryptConfig,
    keys: Arc<dyn KeyLookup + Send + Sync>,
    halves: [Half; 2],
    client_random: Option<ClientRandom>,
    server_random: Option<[u8; 32]>,
    version: Option<ProtocolVersion>,
    cipher_suite: Option<CipherSuite>,
    suite: Option<Suite>,
    /// Secrets found so far.
    secrets: Option<SessionSecrets>,
    status: DecryptStatus,
    /// A finding already says why the connection is not decrypted.
    explained: bool,
    early_data: bool,
    findings: Vec<DecryptFinding>,
    findings_dropped: u64,
}

impl std::fmt::Debug for TlsDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDecryptor")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("cipher_suite", &self.cipher_suite)
            .finish_non_exhaustive()
    }
}

impl TlsDecryptor {
    /// A decryptor for one connection, before any byte; `keys` is asked for the session's
    /// secrets when they are first needed.
    pub fn new(config: DecryptConfig, keys: Arc<dyn KeyLookup + Send + Sync>) -> Self {
        TlsDecryptor {
            config,
            keys,
            halves: [Half::new(), Half::new()],
            client_random: None,
            server_random: None,
            version: None,
            cipher_suite: None,
            suite: None,
            secrets: None,
            status: DecryptStatus::Pending,
            explained: false,
            early_data: false,
            findings: Vec::new(),
            findings_dropped: 0,
        }
    }

    /// Where decryption stands.
    pub fn status(&self) -> DecryptStatus {
        self.status
    }

    /// Findings so far.
    pub fn findings(&self) -> &[DecryptFinding] {
        &self.findings
    }

    /// The ClientHello's random, once seen (what the key log is searched for).
    pub fn client_random(&self) -> Option<&ClientRandom> {
        self.client_random.as_ref()
    }

    /// Bytes held: the record being read and resync buffers (at most about
    /// `2 * (5 + 2^14 + 2048 + max_hello)`).
    pub fn buffered_bytes(&self) -> usize {
        self.halves
            .iter()
            .map(|h| {
                h.body.len()
                    + h.clear.len()
                    + match &h.mode {
                        Mode::Resync { buf, .. } => buf.len(),
                        _ => 0,
                    }
            })
            .sum()
    }

    fn finding(&mut self, f: DecryptFinding, out: &mut Sink<'_>) {
        if self.findings.len() < self.config.max_findings {
            self.findings.push(f.clone());
        } else {
            self.findings_dropped += 1;
        }
        out(DecryptEvent::Finding(f));
    }

    /// In-order bytes of one direction; `ts` is the capture time of the segment that completed
    /// them.
    pub fn data(&mut self, dir: Direction, ts: Timestamp, mut data: &[u8], out: &mut Sink<'_>) {
        let d = idx(dir);
        while !data.is_empty() {
            match self.halves[d].mode {
                Mode::Off => {
                    self.halves[d].offset += data.len() as u64;
                    return;
                }
                Mode::Resync { .. } => {
                    let used = self.resync(dir, ts, data, out);
                    data = &data[used..];
                }
                Mode::Records => {
                    let used = self.frame(dir, ts, data, out);
                    data = &data[used..];
                }
            }
        }
    }

    /// Read header and body bytes; returns the bytes used.
    fn frame(&mut self, dir: Direction, ts: Timestamp, data: &[u8], out: &mut Sink<'_>) -> usize {
        let d = idx(dir);
        let h = &mut self.halves[d];
        if h.discard > 0 {
            let n = h.discard.min(data.len());
            h.discard -= n;
            h.offset += n as u64;
            return n;
        }
        if !h.in_record {
            let n = (5 - h.hdr_len).min(data.len());
            h.hdr[h.hdr_len..h.hdr_len + n].copy_from_slice(&data[..n]);
            h.hdr_len += n;
            h.offset += n as u64;
            if h.hdr_len == 5 {
                h.hdr_len = 0;
                let rec_offset = h.offset - 5;
                if !plausible(&h.hdr) {
                    let lost = Lost {
                        time: ts,
                        offset: rec_offset,
                        bytes: 0,
                        base_seq: h.seq,
                    };
                    let hdr = h.hdr;
                    self.lose_framing(dir, lost, out);
                    // The bad header's bytes may hold the start of the next record.
                    if let Mode::Resync { buf, .. } = &mut self.halves[d].mode {
                        buf.extend_from_slice(&hdr[1..]);
                    }
                    return n;
                }
                h.in_record = true;
                h.want = usize::from(u16::from_be_bytes([h.hdr[3], h.hdr[4]]));
                h.rec_offset = rec_offset;
                h.body.clear();
                if h.want == 0 {
                    self.record_done(dir, ts, out);
                }
            }
            return n;
        }
        let n = (h.want - h.body.len()).min(data.len());
        h.body.extend_from_slice(&data[..n]);
        h.offset += n as u64;
        if h.body.len() == h.want {
            self.record_done(dir, ts, out);
        }
        n
    }

    /// The record in `hdr`/`body` is complete.
    fn record_done(&mut self, dir: Direction, ts: Timestamp, out: &mut Sink<'_>) {
        let d = idx(dir);
        let h = &mut self.halves[d];
        h.in_record = false;
        let hdr = h.hdr;
        let rec_offset = h.rec_offset;
        let mut body = std::mem::take(&mut h.body);
        self.record(dir, ts, hdr, rec_offset, &mut body, out);
        body.clear();
        self.halves[d].body = body;
    }

    /// One whole record.
    fn record(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        hdr: [u8; 5],
        rec_offset: u64,
        body: &mut [u8],
        out: &mut Sink<'_>,
    ) {
        let d = idx(dir);
        let index = self.halves[d].records;
        self.halves[d].records += 1;
        self.halves[d].stats.records += 1;
        let tls13 = self.version == Some(ProtocolVersion::TLS13);
        let ctype = hdr[0];
        if !self.halves[d].encrypted {
            match ctype {
                CT_HANDSHAKE => self.clear_handshake(dir, body),
                CT_CCS if !tls13 && self.server_random.is_some() => {
                    // TLS 1.2: what this side sends next is encrypted.
                    self.halves[d].encrypted = true;
                }
                CT_APP_DATA => {
                    if self.client_random.is_none() {
                        if !self.explained {
                            self.explained = true;
                            self.status = DecryptStatus::NotDecrypted;
                            self.finding(DecryptFinding::NoHandshake { time: ts }, out);
                        }
                    } else if dir == Direction::ClientToServer
                        && self.server_random.is_none()
                        && !self.early_data
                    {
                        self.early_data = true;
                        self.finding(DecryptFinding::EarlyData { time: ts }, out);
                    }
                }
                _ => {}
            }
            return;
        }
        if ctype == CT_CCS {
            if !tls13 && self.halves[d].finished {
                self.finding(DecryptFinding::Renegotiation { time: ts, dir }, out);
                self.stop(dir, ts, out);
            }
            // TLS 1.3 middlebox-compatibility record: not protected, skipped.
            return;
        }
        if tls13 && ctype != CT_APP_DATA {
            // A cleartext alert or handshake record after encryption began (a side that failed
            // before deriving keys): the keyless analysis reports it.
            return;
        }
        if self.halves[d].no_keys {
            return;
        }
        if self.halves[d].key.is_none() && !self.get_key(dir, ts, out) {
            return;
        }
        let h = &mut self.halves[d];
        let Some(key) = h.key.as_ref() else {
            return;
        };
        let seq = h.seq;
        h.seq = h.seq.wrapping_add(1);
        let overhead = key.overhead();
        let record = rec_offset..rec_offset + 5 + body.len() as u64;
        match key.open(seq, &hdr, body) {
            Some(plain) => {
                h.fail_streak = 0;
                h.stats.decrypted += 1;
                self.status = DecryptStatus::Decrypting;
                self.plaintext(dir, ts, ctype, index, record, plain, out);
            }
            None if dir == Direction::ClientToServer
                && self.early_data
                && h.epoch == Epoch::Handshake
                && h.stats.decrypted == 0 =>
            {
                // 0-RTT data after the ServerHello (its own key): it takes no sequence number
                // of the handshake key.
                h.seq = seq;
            }
            None => {
                h.fail_streak += 1;
                h.stats.failed += 1;
                let first = h.stats.decrypted == 0;
                let streak = h.fail_streak;
                self.finding(
                    DecryptFinding::AuthFailed {
                        time: ts,
                        dir,
                        record: index,
                        offset: rec_offset,
                        first,
                    },
                    out,
                );
                if first {
                    if self.halves[1 - d].stats.decrypted == 0 {
                        self.status = DecryptStatus::NotDecrypted;
                    }
                    self.stop(dir, ts, out);
                    return;
                }
                out(DecryptEvent::Gap {
                    dir,
                    ts,
                    bytes: body.len().saturating_sub(overhead) as u64,
                    exact: !tls13 && ctype == CT_APP_DATA,
                });
                if streak >= 3 {
                    self.finding(DecryptFinding::TooManyFailures { time: ts, dir }, out);
                    self.stop(dir, ts, out);
                }
            }
        }
    }

    /// Authenticated plaintext of a record of outer type `ctype`.
    #[allow(clippy::too_many_arguments)]
    fn plaintext(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        ctype: u8,
        index: u64,
        record: std::ops::Range<u64>,
        plain: &[u8],
        out: &mut Sink<'_>,
    ) {
        let rec_offset = record.start;
        let d = idx(dir);
        let tls13 = self.version == Some(ProtocolVersion::TLS13);
        let (ctype, content) = if tls13 {
            // Inner plaintext: content, content type, zero padding.
            match plain.iter().rposition(|&b| b != 0) {
                Some(i) => (plain[i], &plain[..i]),
                None => {
                    self.finding(
                        DecryptFinding::MalformedPlaintext {
                            time: ts,
                            dir,
                            record: index,
                            offset: rec_offset,
                        },
                        out,
                    );
                    return;
                }
            }
        } else {
            (ctype, plain)
        };
        match ctype {
            CT_APP_DATA => {
                self.halves[d].stats.plaintext_bytes += content.len() as u64;
                if !content.is_empty() {
                    out(DecryptEvent::Plain {
                        dir,
                        ts,
                        bytes: content,
                        record,
                    });
                }
            }
            CT_ALERT => {
                if let [level, description] = content {
                    self.finding(
                        DecryptFinding::Alert {
                            time: ts,
                            by: sender(dir),
                            level: AlertLevel(*level),
                            description: AlertDescription(*description),
                            after_answers: false,
                        },
                        out,
                    );
                } else {
                    self.finding(
                        DecryptFinding::MalformedPlaintext {
                            time: ts,
                            dir,
                            record: index,
                            offset: rec_offset,
                        },
                        out,
                    );
                }
            }
            CT_HANDSHAKE if tls13 => {
                let mut ended = Vec::new();
                self.halves[d].hs.feed(content, &mut |t| ended.push(t));
                for t in ended {
                    match (t, self.halves[d].epoch) {
                        (HS_FINISHED, Epoch::Handshake) => self.next_epoch(dir),
                        (HS_KEY_UPDATE, Epoch::Application) => self.key_update(dir, ts, out),
                        _ => {}
                    }
                }
            }
            CT_HANDSHAKE => self.halves[d].finished = true,
            _ => {}
        }
    }

    /// TLS 1.3: this side's Finished ended: its application secret from now on.
    fn next_epoch(&mut self, dir: Direction) {
        let d = idx(dir);
        self.halves[d].epoch = Epoch::Application;
        // Looked up when the next record comes (the log may still be growing).
        self.halves[d].key = None;
        self.halves[d].seq = 0;
    }

    /// TLS 1.3 KeyUpdate: the next secret from the current one (RFC 8446 section 7.2).
    fn key_update(&mut self, dir: Direction, ts: Timestamp, out: &mut Sink<'_>) {
        let d = idx(dir);
        let Some(suite) = self.suite else {
            return;
        };
        let h = &mut self.halves[d];
        let next = keys::expand_label(
            suite.hash,
            &h.secret,
            b"traffic upd",
            suite.hash.output_len(),
        );
        match next.and_then(|s| RecordKey::tls13(suite, &s).map(|k| (s, k))) {
            Some((s, k)) => {
                h.secret = s;
                h.key = Some(k);
                h.seq = 0;
                self.finding(DecryptFinding::KeyUpdate { time: ts, dir }, out);
            }
            None => self.stop(dir, ts, out),
        }
    }

    /// Nothing more of `dir` is decrypted.
    fn stop(&mut self, dir: Direction, ts: Timestamp, out: &mut Sink<'_>) {
        let h = &mut self.halves[idx(dir)];
        if matches!(h.mode, Mode::Off) {
            return;
        }
        h.mode = Mode::Off;
        h.key = None;
        h.body = Vec::new();
        out(DecryptEvent::Stopped { dir, ts });
    }

    /// The secrets of the session, asking the key log again when `label` is missing (it may
    /// have grown since).
    fn secret(&mut self, label: Label) -> Option<Vec<u8>> {
        let have = self
            .secrets
            .as_ref()
            .and_then(|s| s.get(label))
            .map(|s| s.bytes().to_vec());
        if have.is_some() {
            return have;
        }
        let cr = self.client_random?;
        self.secrets = self.keys.lookup(&cr);
        self.secrets
            .as_ref()
            .and_then(|s| s.get(label))
            .map(|s| s.bytes().to_vec())
    }

    /// Set up the key of `dir` for its current epoch; false (with a finding, once) when there
    /// is none to be had.
    fn get_key(&mut self, dir: Direction, ts: Timestamp, out: &mut Sink<'_>) -> bool {
        let d = idx(dir);
        let (Some(cr), Some(version), Some(cs)) =
            (self.client_random, self.version, self.cipher_suite)
        else {
            return self.no_keys(dir, ts, None, out);
        };
        let suite = match self.suite {
            Some(s) => s,
            None => match keys::suite(version, cs) {
                Ok(s) => {
                    self.suite = Some(s);
                    s
                }
                Err(refusal) => {
                    let f = DecryptFinding::UnsupportedSuite {
                        time: ts,
                        version,
                        cipher_suite: cs,
                        refusal,
                    };
                    return self.no_keys(dir, ts, Some(f), out);
                }
            },
        };
        if version == ProtocolVersion::TLS13 {
            let label = match (dir, self.halves[d].epoch) {
                (Direction::ClientToServer, Epoch::Handshake) => {
                    Label::ClientHandshakeTrafficSecret
                }
                (Direction::ServerToClient, Epoch::Handshake) => {
                    Label::ServerHandshakeTrafficSecret
                }
                (Direction::ClientToServer, Epoch::Application) => Label::ClientTrafficSecret0,
                (Direction::ServerToClient, Epoch::Application) => Label::ServerTrafficSecret0,
            };
            let key = self
                .secret(label)
                .and_then(|s| RecordKey::tls13(suite, &s).map(|k| (s, k)));
            match key {
                Some((s, k)) => {
                    let h = &mut self.halves[d];
                    h.secret = s;
                    h.key = Some(k);
                    true
                }
                None => {
                    let f = self.missing(ts, cr, label);
                    self.no_keys(dir, ts, Some(f), out)
                }
            }
        } else {
            let Some(sr) = self.server_random else {
                return self.no_keys(dir, ts, None, out);
            };
            let pair = self
                .secret(Label::ClientRandom)
                .and_then(|m| RecordKey::tls12(suite, &m, &cr, &sr));
            match pair {
                Some((c, s)) => {
                    // Both directions share the key block; keep the other's for later.
                    let (mine, other) = match dir {
                        Direction::ClientToServer => (c, s),
                        Direction::ServerToClient => (s, c),
                    };
                    self.halves[d].key = Some(mine);
                    if self.halves[1 - d].key.is_none() && !self.halves[1 - d].no_keys {
                        self.halves[1 - d].key = Some(other);
                    }
                    true
                }
                None => {
                    let f = self.missing(ts, cr, Label::ClientRandom);
                    self.no_keys(dir, ts, Some(f), out)
                }
            }
        }
    }

    fn missing(&self, ts: Timestamp, cr: ClientRandom, label: Label) -> DecryptFinding {
        DecryptFinding::KeyNotInLog {
            time: ts,
            client_random: hex::encode(cr),
            label,
            session_logged: self.secrets.is_some(),
        }
    }

    /// `dir` cannot be decrypted; the finding (if any) is written once per connection.
    fn no_keys(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        f: Option<DecryptFinding>,
        out: &mut Sink<'_>,
    ) -> bool {
        let d = idx(dir);
        self.halves[d].no_keys = true;
        if self.halves[1 - d].stats.decrypted == 0 {
            self.status = DecryptStatus::NotDecrypted;
        }
        if let Some(f) = f {
            if !self.explained {
                self.explained = true;
                self.finding(f, out);
            }
        } else if !self.explained {
            self.explained = true;
            self.finding(DecryptFinding::NoHandshake { time: ts }, out);
        }
        self.stop(dir, ts, out);
        false
    }

    /// Cleartext handshake bytes: reassemble ClientHello and ServerHello, skip the rest.
    fn clear_handshake(&mut self, dir: Direction, mut b: &[u8]) {
        let d = idx(dir);
        let cap = self.config.max_hello;
        while !b.is_empty() {
            let h = &mut self.halves[d];
            if h.clear_broken {
                return;
            }
            if h.clear_skip > 0 {
                let n = h.clear_skip.min(b.len() as u64) as usize;
                h.clear_skip -= n as u64;
                b = &b[n..];
                continue;
            }
            if h.clear.len() < 4 {
                let n = (4 - h.clear.len()).min(b.len());
                h.clear.extend_from_slice(&b[..n]);
                b = &b[n..];
                if h.clear.len() < 4 {
                    return;
                }
                let len = u32::from_be_bytes([0, h.clear[1], h.clear[2], h.clear[3]]) as usize;
                let wanted = matches!(h.clear[0], HS_CLIENT_HELLO | HS_SERVER_HELLO);
                if !wanted || len > cap {
                    h.clear.clear();
                    h.clear_skip = len as u64;
                    continue;
                }
            }
            let len = u32::from_be_bytes([0, h.clear[1], h.clear[2], h.clear[3]]) as usize;
            let n = (4 + len - h.clear.len()).min(b.len());
            h.clear.extend_from_slice(&b[..n]);
            b = &b[n..];
            if h.clear.len() == 4 + len {
                let msg = std::mem::take(&mut h.clear);
                self.hello(dir, &msg);
            }
        }
    }

    /// A whole ClientHello or ServerHello.
    fn hello(&mut self, dir: Direction, msg: &[u8]) {
        let Ok((_, TlsMessage::Handshake(hs))) = tls_parser::parse_tls_message_handshake(msg)
        else {
            // The keyless analysis reports a malformed hello; without it nothing is decrypted
            // (get_key will say so).
            return;
        };
        match (dir, hs) {
            // The second hello after a HelloRetryRequest keeps the random.
            (Direction::ClientToServer, TlsMessageHandshake::ClientHello(ch))
                if self.client_random.is_none() =>
            {
                self.client_random = ch.random.try_into().ok();
            }
            (Direction::ServerToClient, TlsMessageHandshake::ServerHello(sh)) => {
                if sh.random == HRR_RANDOM {
                    return; // the real ServerHello follows
                }
                let mut version = ProtocolVersion(sh.version.0);
                if let Some(ext) = sh.ext {
                    if let Ok((_, exts)) = tls_parser::parse_tls_server_hello_extensions(ext) {
                        for e in exts {
                            if let TlsExtension::SupportedVersions(vs) = e {
                                if let Some(v) = vs.first() {
                                    version = ProtocolVersion(v.0);
                                }
                            }
                        }
                    }
                }
                if self.server_random.is_some() {
                    return; // a second ServerHello: keep the first
                }
                self.server_random = sh.random.try_into().ok();
                self.version = Some(version);
                self.cipher_suite = Some(CipherSuite(sh.cipher.0));
                if version == ProtocolVersion::TLS13 {
                    // Everything after the ServerHello is encrypted, both ways.
                    self.halves[0].encrypted = true;
                    self.halves[1].encrypted = true;
                }
            }
            _ => {}
        }
    }

    /// `dir` stops for good at `ts` after the loss `lost` (no record after it could be
    /// authenticated, or nothing to prove one with): the gap is reported with that outcome.
    fn stop_after_loss(&mut self, dir: Direction, lost: Lost, ts: Timestamp, out: &mut Sink<'_>) {
        self.finding(
            DecryptFinding::Gap {
                time: lost.time,
                dir,
                offset: lost.offset,
                bytes: lost.bytes,
                outcome: GapOutcome::Stopped,
            },
            out,
        );
        self.stop(dir, ts, out);
    }

    /// The framing of `dir` is lost (gap across records, or bytes that are not a record).
    fn lose_framing(&mut self, dir: Direction, lost: Lost, out: &mut Sink<'_>) {
        let d = idx(dir);
        let h = &mut self.halves[d];
        h.in_record = false;
        h.hdr_len = 0;
        h.body.clear();
        if h.no_keys || matches!(h.mode, Mode::Off) {
            h.mode = Mode::Off;
            return;
        }
        if h.encrypted && h.key.is_none() {
            // The key of this epoch is not set up yet: set it up to authenticate the resync.
            let _ = self.get_key(dir, lost.time, out);
        }
        let h = &mut self.halves[d];
        if !h.encrypted || h.key.is_none() {
            // Nothing to prove a resync with (before encryption the gap may hide the hellos
            // or the ChangeCipherSpec). Bytes that are not TLS before encryption began are the
            // keyless analysis' finding (`not_tls`, `tls_to_plain_server`), not a decryption one.
            if !h.no_keys && (h.encrypted || lost.bytes > 0) {
                self.stop_after_loss(dir, lost, lost.time, out);
            } else {
                self.stop(dir, lost.time, out);
            }
            return;
        }
        h.mode = Mode::Resync {
            lost,
            buf: Vec::new(),
            scanned: 0,
            tried: 0,
        };
    }

    /// Resync: collect bytes, look for a header whose record authenticates. Returns the bytes
    /// of `data` used.
    fn resync(&mut self, dir: Direction, ts: Timestamp, data: &[u8], out: &mut Sink<'_>) -> usize {
        let d = idx(dir);
        let window = self.config.resync_window;
        let trials = self.config.max_seq_trials;
        let tls13 = self.version == Some(ProtocolVersion::TLS13);
        let Mode::Resync {
            lost,
            mut buf,
            mut scanned,
            mut tried,
        } = std::mem::replace(&mut self.halves[d].mode, Mode::Records)
        else {
            return 0;
        };
        // Take no more than one record's worth beyond what is held.
        let room = (5 + MAX_BODY).saturating_sub(buf.len()).max(1);
        let used = room.min(data.len());
        buf.extend_from_slice(&data[..used]);
        self.halves[d].offset += used as u64;
        loop {
            // First candidate header.
            let cand = (0..buf.len().saturating_sub(4)).find(|&i| {
                let h: [u8; 5] = [buf[i], buf[i + 1], buf[i + 2], buf[i + 3], buf[i + 4]];
                let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
                let types_ok = if tls13 {
                    h[0] == CT_APP_DATA
                } else {
                    matches!(h[0], CT_ALERT | CT_HANDSHAKE | CT_APP_DATA)
                };
                types_ok && h[1] == 3 && h[2] == 3 && plausible(&h) && len > keys::TAG_LEN
            });
            let Some(i) = cand else {
                let keep = buf.len().min(4);
                let drop = buf.len() - keep;
                scanned += drop as u64;
                buf.drain(..drop);
                break;
            };
            scanned += i as u64;
            buf.drain(..i);
            let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
            if buf.len() < 5 + len {
                break; // wait for the rest of the candidate
            }
            let hdr: [u8; 5] = [buf[0], buf[1], buf[2], buf[3], buf[4]];
            let found = {
                let Some(key) = self.halves[d].key.as_ref() else {
                    break;
                };
                let extra = scanned.saturating_add(lost.bytes) / 22;
                let tries = extra.saturating_add(2).min(trials);
                let mut scratch = Vec::with_capacity(len);
                (0..tries).find(|k| {
                    scratch.clear();
                    scratch.extend_from_slice(&buf[5..5 + len]);
                    key.open(lost.base_seq.wrapping_add(*k), &hdr, &mut scratch)
                        .is_some()
                })
            };
            if let Some(k) = found {
                let h = &mut self.halves[d];
                // buf[0] is the record's first byte.
                let rec_offset = h.offset - buf.len() as u64;
                let rest = buf.split_off(5 + len);
                let mut body = std::mem::take(&mut buf);
                h.seq = lost.base_seq.wrapping_add(k);
                self.finding(
                    DecryptFinding::Gap {
                        time: lost.time,
                        dir,
                        offset: lost.offset,
                        bytes: lost.bytes,
                        outcome: GapOutcome::Resynced {
                            skipped: scanned,
                            records_lost: k,
                        },
                    },
                    out,
                );
                out(DecryptEvent::Gap {
                    dir,
                    ts,
                    bytes: lost.bytes.saturating_add(scanned),
                    exact: false,
                });
                // Put the record through the normal path (its offset: where it began).
                let mut rec_body = body.split_off(5);
                self.halves[d].records += k;
                self.record(dir, ts, hdr, rec_offset, &mut rec_body, out);
                // Bytes after it are framed normally.
                if !rest.is_empty() && matches!(self.halves[d].mode, Mode::Records) {
                    self.halves[d].offset -= rest.len() as u64;
                    self.data(dir, ts, &rest, out);
                }
                return used;
            }
            // Not a record: rule out this header and look further.
            buf.drain(..1);
            scanned += 1;
            tried += 1;
            if tried >= MAX_CANDIDATES {
                break;
            }
        }
        if scanned > window || tried >= MAX_CANDIDATES {
            self.stop_after_loss(dir, lost, ts, out);
            return used;
        }
        self.halves[d].mode = Mode::Resync {
            lost,
            buf,
            scanned,
            tried,
        };
        used
    }

    /// `bytes` of `dir` the capture never saw.
    pub fn gap(&mut self, dir: Direction, ts: Timestamp, bytes: u64, out: &mut Sink<'_>) {
        let d = idx(dir);
        let tls13 = self.version == Some(ProtocolVersion::TLS13);
        let h = &mut self.halves[d];
        let offset = h.offset;
        h.offset += bytes;
        match &mut h.mode {
            Mode::Off => return,
            Mode::Resync { lost, buf, .. } => {
                // Still looking: what is held is no longer contiguous with what comes.
                lost.bytes = lost.bytes.saturating_add(bytes);
                buf.clear();
                return;
            }
            Mode::Records => {}
        }
        if h.discard as u64 >= bytes {
            h.discard -= bytes as usize;
            return;
        }
        if h.in_record && (h.want - h.body.len()) as u64 >= bytes {
            // Inside one record's body: that record is lost, the framing holds and the next
            // record's sequence number is known.
            let record = h.records;
            let ctype = h.hdr[0];
            h.discard = h.want - h.body.len() - bytes as usize;
            h.in_record = false;
            h.body.clear();
            h.records += 1;
            h.stats.records += 1;
            if !h.encrypted {
                if ctype == CT_HANDSHAKE {
                    // A hello cut by the gap cannot be read.
                    h.clear_broken = true;
                }
                return;
            }
            if ctype == CT_CCS || h.no_keys {
                return;
            }
            h.seq = h.seq.wrapping_add(1);
            let overhead = h.key.as_ref().map_or(keys::TAG_LEN, |k| k.overhead());
            let plain = h.want.saturating_sub(overhead) as u64;
            self.finding(
                DecryptFinding::Gap {
                    time: ts,
                    dir,
                    offset,
                    bytes,
                    outcome: GapOutcome::RecordLost { record },
                },
                out,
            );
            out(DecryptEvent::Gap {
                dir,
                ts,
                bytes: plain,
                exact: !tls13 && ctype == CT_APP_DATA,
            });
            return;
        }
        // Across records: the framing is lost. A record begun counts as one lost.
        let begun = h.in_record && h.hdr[0] != CT_CCS;
        let base_seq = h.seq.wrapping_add(u64::from(begun));
        h.discard = 0;
        let lost = Lost {
            time: ts,
            offset,
            bytes,
            base_seq,
        };
        self.lose_framing(dir, lost, out);
    }

    /// The connection is over (`how` from the TCP stage, as for `TlsConnection::close`; how it
    /// closed changes nothing that can be decrypted). A direction still resynchronising stops.
    pub fn close(&mut self, ts: Timestamp, _how: CloseKind, out: &mut Sink<'_>) {
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let d = idx(dir);
            if let Mode::Resync { lost, .. } = self.halves[d].mode {
                self.stop_after_loss(dir, lost, ts, out);
            }
        }
    }

    /// Hand on everything.
    pub fn finish(self) -> DecryptReport {
        DecryptReport {
            status: self.status,
            version: self.version,
            cipher_suite: self.cipher_suite,
            stats: PerDirection {
                client_to_server: self.halves[0].stats,
                server_to_client: self.halves[1].stats,
            },
            findings: self.findings,
            findings_dropped: self.findings_dropped,
        }
    }
}

#[cfg(test)]
mod tests;
