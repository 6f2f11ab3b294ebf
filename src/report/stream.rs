//! The `--json` document written in one pass, in memory that does not grow with the capture.
//!
//! Why: keeping every exchange (headers, parts, decoded event) until the end costs ~9 KB a
//! request, so a long capture's report would grow without bound. Instead each connection is
//! serialised once, when it closes, into a *spill* (an unnamed temporary file); in memory stay
//! only the diagnosis [`Ledger`] (~64 bytes a request) and 8 bytes per exchange plus ~40 per
//! connection here. At the end the ledger gives stalls, devices and retries, and the document is
//! written with connections in `(first_seen, id)` order, copied from the spill with each
//! exchange's `retry_of` filled in. The bytes are exactly what [`super::json::write`] prints
//! (compact) for the same capture; a test holds the two together.

use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use crate::diagnose::Ledger;
use crate::model::{Connection, ExchangeRef};
use crate::pipeline::Counters;
use crate::time::Timestamp;

use super::json::SCHEMA_VERSION;

/// Where serialised connections wait for the end: a temporary file, or memory in tests.
pub trait Spill: Read + Write + Seek + Send {}
impl<T: Read + Write + Seek + Send> Spill for T {}

/// One connection in the spill.
struct Spilled {
    first_seen: Timestamp,
    id: u64,
    offset: u64,
    len: usize,
    /// Its exchanges' entries in [`JsonStream::slots`].
    slots: std::ops::Range<usize>,
}

/// Where an exchange's `retry_of` value (`null` as written) sits in its connection's bytes.
#[derive(Clone, Copy)]
struct Slot {
    at: u32,
    index: u32,
}

/// What a serialised exchange ends with (`retry_of` is the last field of `Exchange`).
const RETRY_TAIL: &[u8] = b"\"retry_of\":null}";
/// What a serialised connection without its exchanges ends with (`exchanges` is its last field).
const EXCHANGES_TAIL: &[u8] = b"\"exchanges\":[]}";

/// Streaming writer of the JSON report: [`JsonStream::add`] each finished connection, then
/// [`JsonStream::finish`].
pub struct JsonStream {
    spill: BufWriter<Box<dyn Spill>>,
    written: u64,
    conns: Vec<Spilled>,
    slots: Vec<Slot>,
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
            conns: Vec::new(),
            slots: Vec::new(),
            ledger: Ledger::default(),
            scratch: Vec::new(),
            error: None,
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
        let first = self.slots.len();
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
                let at = u32::try_from(buf.len() - 5).map_err(io::Error::other)?;
                let index = u32::try_from(ex.index).map_err(io::Error::other)?;
                self.slots.push(Slot { at, index });
            }
        }
        buf.extend_from_slice(b"]}");
        self.spill.write_all(buf)?;
        self.conns.push(Spilled {
            first_seen: c.first_seen,
            id: c.id,
            offset: self.written,
            len: buf.len(),
            slots: first..self.slots.len(),
        });
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
        let mut conns = self.conns;
        conns.sort_unstable_by_key(|c| (c.first_seen, c.id));

        out.write_all(b"{\"alarmscope\":")?;
        serde_json::to_writer(&mut *out, env!("CARGO_PKG_VERSION"))?;
        write!(out, ",\"schema\":{SCHEMA_VERSION},\"source\":")?;
        serde_json::to_writer(&mut *out, source)?;
        out.write_all(b",\"connections\":[")?;
        let mut buf = Vec::new();
        for (n, c) in conns.iter().enumerate() {
            if n > 0 {
                out.write_all(b",")?;
            }
            buf.resize(c.len, 0);
            spill.seek(SeekFrom::Start(c.offset))?;
            spill.read_exact(&mut buf)?;
            let mut from = 0usize;
            for slot in self.slots.get(c.slots.clone()).unwrap_or_default() {
                let at = ExchangeRef {
                    connection: c.id,
                    index: slot.index as usize,
                };
                let Ok(k) = retries.binary_search_by_key(&at, |r| r.0) else {
                    continue;
                };
                let Some(of) = retries.get(k).map(|r| r.1) else {
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

    /// The streamed document, spilling to memory or to a temporary file.
    fn streamed(path: &std::path::Path, in_memory: bool) -> Vec<u8> {
        let mut doc = if in_memory {
            JsonStream::new(Box::new(io::Cursor::new(Vec::new())))
        } else {
            JsonStream::with_temp_file()
        };
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
        let mut retries_seen = 0;
        for name in [
            "stall-no-answer.pcap",
            "server-close.pcap",
            "keepalive.pcap",
            "multipart-anpr.pcap",
            "syn-unanswered.pcap",
            "two-interfaces.pcapng",
            "cut-mid-record.pcap",
            "http-to-https.pcap",
            "https-unknown-ca.pcap",
            "https-no-answer.pcap",
        ] {
            let path = sample(name);
            let want = in_memory(&path);
            for spill_in_memory in [true, false] {
                let got = streamed(&path, spill_in_memory);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "{name}"
                );
            }
            let doc: serde_json::Value = serde_json::from_slice(&want).expect("valid JSON");
            retries_seen += doc["connections"]
                .as_array()
                .expect("connections")
                .iter()
                .flat_map(|c| c["exchanges"].as_array().cloned().unwrap_or_default())
                .filter(|e| !e["retry_of"].is_null())
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
