//! The `--json` document written in one pass, in memory that does not grow with the capture.
//!
//! Why: keeping every exchange (headers, parts, decoded event) until the end costs ~9 KB a
//! request, so a long capture's report would grow without bound. Instead each connection is
//! serialised once, when it closes, into a *spill* (an unnamed temporary file); in memory stay
//! only the diagnosis [`Ledger`] (~64 bytes a request, folded past [`LEDGER_ITEMS`]) and the
//! spill's index, itself sorted out of memory ([`super::order`]). At the end the ledger gives
//! stalls, devices and retries, and the document is written with connections in
//! `(first_seen, id)` order, copied from the spill with each exchange's `retry_of` filled in.
//! The bytes are exactly what [`super::json::write`] prints (compact) for the same capture; a
//! test holds the two together.

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::diagnose::Ledger;
use crate::model::{Connection, ExchangeRef};
use crate::pipeline::Counters;

use super::json::SCHEMA_VERSION;
use super::order::{Entry, SortedIndex};

/// Where serialised connections wait for the end: a temporary file, or memory in tests.
pub trait Spill: Read + Write + Seek + Send {}
impl<T: Read + Write + Seek + Send> Spill for T {}

/// Where an exchange's `retry_of` value (`null` as written) sits in its connection's bytes, for
/// the rare connection whose exchanges are not numbered 0, 1, 2... in order (see
/// [`JsonStream::irregular`]).
#[derive(Clone, Copy)]
struct Slot {
    at: u32,
    index: u32,
}

/// What a serialised exchange ends with (`retry_of` is the last field of `Exchange`).
const RETRY_TAIL: &[u8] = b"\"retry_of\":null}";
/// What a serialised connection without its exchanges ends with (`exchanges` is its last field).
const EXCHANGES_TAIL: &[u8] = b"\"exchanges\":[]}";

/// Requests the report's ledger keeps on its time lines before it folds the older half away
/// (~64 bytes each: 16 MB). Stalls and retries are still all listed (`Ledger::folding`).
pub const LEDGER_ITEMS: usize = 1 << 18;

/// Streaming writer of the JSON report: [`JsonStream::add`] each finished connection, then
/// [`JsonStream::finish`].
pub struct JsonStream {
    spill: BufWriter<Box<dyn Spill>>,
    written: u64,
    index: SortedIndex,
    /// The `retry_of` places of connections whose `k`-th `"retry_of":null}` is not exchange `k`
    /// (an exchange index out of step, or a `retry_of` already set). Every other connection's
    /// places are found again at the end by searching its bytes, so nothing per exchange is kept.
    irregular: HashMap<u64, Vec<Slot>>,
    ledger: Ledger,
    scratch: Vec<u8>,
    /// The first failure to write the spill (reported by `finish`; later adds are skipped).
    error: Option<io::Error>,
}

impl JsonStream {
    pub fn new(spill: Box<dyn Spill>) -> Self {
        JsonStream {
            spill: BufWriter::with_capacity(1 << 16, spill),
            written: 0,
            index: SortedIndex::default(),
            irregular: HashMap::new(),
            ledger: Ledger::folding(LEDGER_ITEMS),
            scratch: Vec::new(),
            error: None,
        }
    }

    /// A stream whose index writes a sorted run every `chunk` connections and whose ledger
    /// folds past `ledger_items` requests (tests: runs and folds on small captures).
    #[cfg(test)]
    fn with_limits(spill: Box<dyn Spill>, chunk: usize, ledger_items: usize) -> Self {
        JsonStream {
            index: SortedIndex::with_chunk(chunk),
            ledger: Ledger::folding(ledger_items),
            ..Self::new(spill)
        }
    }

    /// A stream spilling to an unnamed temporary file (`$TMPDIR`), or to memory when no
    /// temporary file can be made (then memory grows by the JSON size, ~1.6 KB a request).
    pub fn with_temp_file() -> Self {
        match tempfile::tempfile() {
            Ok(f) => Self::new(Box::new(f)),
            Err(_) => Self::new(Box::new(io::Cursor::new(Vec::new()))),
        }
    }

    /// Requests taken in so far.
    pub fn requests(&self) -> u64 {
        self.ledger.requests()
    }

    /// Take in one finished connection: diagnose it, serialise it into the spill, drop it.
    pub fn add(&mut self, mut c: Connection) {
        self.ledger.add(&c);
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.spill_one(&mut c) {
            self.error = Some(e);
        }
    }

    /// Take in one finished connection for the diagnosis (summary, stalls, devices still describe
    /// the whole capture) but list only its rows that pass `filter` (the headless filters).
    pub fn add_filtered(&mut self, c: Connection, filter: &crate::filter::RowFilter) {
        self.ledger.add(&c);
        let Some(mut c) = filter.select(c) else {
            return;
        };
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.spill_one(&mut c) {
            self.error = Some(e);
        }
    }

    fn spill_one(&mut self, c: &mut Connection) -> io::Result<()> {
        let exchanges = std::mem::take(&mut c.exchanges);
        let buf = &mut self.scratch;
        buf.clear();
        serde_json::to_writer(&mut *buf, &*c)?;
        if !buf.ends_with(EXCHANGES_TAIL) {
            return Err(io::Error::other(
                "internal: `exchanges` is not the last field of a connection",
            ));
        }
        buf.truncate(buf.len() - 2); // keep `[`, drop `]}`
        let regular = exchanges
            .iter()
            .enumerate()
            .all(|(k, ex)| ex.index == k && ex.retry_of.is_none());
        let mut slots = Vec::new();
        for (k, ex) in exchanges.iter().enumerate() {
            if k > 0 {
                buf.push(b',');
            }
            serde_json::to_writer(&mut *buf, ex)?;
            if ex.retry_of.is_none() {
                if !buf.ends_with(RETRY_TAIL) {
                    return Err(io::Error::other(
                        "internal: `retry_of` is not the last field of an exchange",
                    ));
                }
                if !regular {
                    let at = u32::try_from(buf.len() - 5).map_err(io::Error::other)?;
                    let index = u32::try_from(ex.index).map_err(io::Error::other)?;
                    slots.push(Slot { at, index });
                }
            }
        }
        buf.extend_from_slice(b"]}");
        self.spill.write_all(buf)?;
        if !regular {
            self.irregular.insert(c.id, slots);
        }
        self.index.add(Entry {
            first_seen: c.first_seen.0,
            id: c.id,
            offset: self.written,
            len: buf.len() as u64,
        })?;
        self.written += buf.len() as u64;
        Ok(())
    }

    /// Diagnose what was added and write the whole document (one line) to `out`.
    pub fn finish(
        self,
        source: &str,
        counters: &Counters,
        warnings: &[crate::capture::Warning],
        out: &mut dyn Write,
    ) -> io::Result<()> {
        if let Some(e) = self.error {
            return Err(io::Error::new(
                e.kind(),
                format!("temporary file for the report: {e}"),
            ));
        }
        let mut spill = self.spill.into_inner().map_err(|e| e.into_error())?;
        let (findings, mut retries) = self.ledger.finish(counters, counters.last_packet);
        retries.sort_unstable_by_key(|r| r.0);
        let mut order = self.index.finish()?;
        spill.seek(SeekFrom::Start(0))?;
        // Connections are listed nearly in the order they were spilled: one buffered reader,
        // seeking only where the order jumps (a seek within the buffer keeps it).
        let mut spill = BufReader::with_capacity(1 << 16, spill);
        let mut pos: u64 = 0;
        let tail = memchr::memmem::Finder::new(RETRY_TAIL);

        out.write_all(b"{\"alarmscope\":")?;
        serde_json::to_writer(&mut *out, env!("CARGO_PKG_VERSION"))?;
        write!(out, ",\"schema\":{SCHEMA_VERSION},\"source\":")?;
        serde_json::to_writer(&mut *out, source)?;
        out.write_all(b",\"connections\":[")?;
        let mut buf = Vec::new();
        let mut places: Vec<Slot> = Vec::new();
        let mut n = 0u64;
        while let Some(c) = order.next_entry()? {
            if n > 0 {
                out.write_all(b",")?;
            }
            n += 1;
            if c.offset != pos {
                let jump = i64::try_from(c.offset).map_err(io::Error::other)?
                    - i64::try_from(pos).map_err(io::Error::other)?;
                spill.seek_relative(jump)?;
            }
            buf.resize(usize::try_from(c.len).map_err(io::Error::other)?, 0);
            spill.read_exact(&mut buf)?;
            pos = c.offset + c.len;
            // This connection's retries (sorted by exchange), if any.
            let first = retries.partition_point(|r| r.0.connection < c.id);
            let mine = retries
                .get(first..)
                .unwrap_or_default()
                .iter()
                .take_while(|r| r.0.connection == c.id);
            let mut mine = mine.peekable();
            if mine.peek().is_none() {
                out.write_all(&buf)?;
                continue;
            }
            places.clear();
            match self.irregular.get(&c.id) {
                Some(slots) => places.extend_from_slice(slots),
                None => {
                    for (k, at) in tail.find_iter(&buf).enumerate() {
                        // `null` starts 5 bytes before the tail's end.
                        let at =
                            u32::try_from(at + RETRY_TAIL.len() - 5).map_err(io::Error::other)?;
                        let index = u32::try_from(k).map_err(io::Error::other)?;
                        places.push(Slot { at, index });
                    }
                }
            }
            let mut from = 0usize;
            for slot in &places {
                let at = ExchangeRef {
                    connection: c.id,
                    index: slot.index as usize,
                };
                let Some(of) = mine.clone().find(|r| r.0 == at).map(|r| r.1) else {
                    continue;
                };
                let at = slot.at as usize;
                out.write_all(buf.get(from..at).unwrap_or_default())?;
                serde_json::to_writer(&mut *out, &of)?;
                from = at + 4; // past `null`
            }
            out.write_all(buf.get(from..).unwrap_or_default())?;
        }
        out.write_all(b"],\"stalls\":")?;
        serde_json::to_writer(&mut *out, &findings.stalls)?;
        out.write_all(b",\"devices\":")?;
        serde_json::to_writer(&mut *out, &findings.devices)?;
        out.write_all(b",\"summary\":")?;
        serde_json::to_writer(&mut *out, &findings.summary)?;
        out.write_all(b",\"warnings\":")?;
        serde_json::to_writer(&mut *out, warnings)?;
        out.write_all(b"}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{replay, replay_each, ReplayOptions};
    use crate::report::tests::sample;

    /// The streamed document of `path` written by `doc`.
    fn streamed(path: &std::path::Path, mut doc: JsonStream) -> Vec<u8> {
        let (counters, warnings) =
            replay_each(path, ReplayOptions::default(), &mut |_| {}, &mut |done| {
                for c in done {
                    doc.add(c);
                }
            })
            .expect("sample opens");
        let mut out = Vec::new();
        doc.finish("src", &counters, &warnings, &mut out)
            .expect("written");
        out
    }

    fn memory_spill() -> Box<dyn Spill> {
        Box::new(io::Cursor::new(Vec::new()))
    }

    fn in_memory(path: &std::path::Path) -> Vec<u8> {
        let mut report =
            replay(path, ReplayOptions::default(), &mut |_| {}, &mut |_| {}).expect("sample opens");
        report.source = "src".into();
        let mut out = Vec::new();
        crate::report::json::write(&report, &mut out, false).expect("written");
        out
    }

    #[test]
    fn streamed_document_is_byte_for_byte_the_in_memory_one() {
        // stall-no-answer and server-close hold retries: the patched `retry_of` path is taken.
        // Each sample is written three ways: spilled to memory, to a temporary file, and with a
        // sorted run every 2 connections and a ledger folding past 4 requests (the index merged
        // from many runs, the time lines walked in pieces): the bytes are the same.
        let mut retries_seen = 0;
        for name in [
            "stall-no-answer.pcap",
            "server-close.pcap",
            "keepalive.pcap",
            "multipart-anpr.pcap",
            "syn-unanswered.pcap",
            "two-interfaces.pcapng",
            "cut-mid-record.pcap",
            "out-of-order.pcap",
            "http-to-https.pcap",
            "https-unknown-ca.pcap",
            "https-no-answer.pcap",
        ] {
            let path = sample(name);
            let want = in_memory(&path);
            let ways = [
                ("memory", JsonStream::new(memory_spill())),
                ("temporary file", JsonStream::with_temp_file()),
                (
                    "runs and folds",
                    JsonStream::with_limits(memory_spill(), 2, 4),
                ),
            ];
            for (how, doc) in ways {
                let got = streamed(&path, doc);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "{name}, {how}"
                );
            }
            retries_seen += String::from_utf8_lossy(&want)
                .matches("\"retry_of\":{")
                .count();
        }
        assert!(retries_seen >= 2, "samples with retries: {retries_seen}");
    }

    #[test]
    fn a_failing_spill_is_reported_not_ignored() {
        struct Full;
        impl Read for Full {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Ok(0)
            }
        }
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("no space left"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl Seek for Full {
            fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
                Ok(0)
            }
        }
        let mut doc = JsonStream::new(Box::new(Full));
        let report = replay(
            &sample("keepalive.pcap"),
            ReplayOptions::default(),
            &mut |_| {},
            &mut |_| {},
        )
        .expect("sample opens");
        // More than the 64 KiB write buffer, so the spill is really written.
        for _ in 0..200 {
            for c in &report.connections {
                doc.add(c.clone());
            }
        }
        let err = doc
            .finish("src", &Counters::default(), &[], &mut Vec::new())
            .expect_err("spill failure surfaces");
        assert!(err.to_string().contains("no space left"), "{err}");
    }
}
