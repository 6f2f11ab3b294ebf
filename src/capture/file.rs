//! Reading capture files through libpcap (the `pcap` crate): pcap and pcapng, micro- and
//! nanosecond timestamps. A thin IO shell; decoding lives in [`super::frame`].
//!
//! Gzip-compressed captures (`.pcap.gz`, `.pcapng.gz`, told by their magic bytes, not by name)
//! are decompressed as a stream (flate2) and read with the pure-Rust `pcap-file` readers, since
//! libpcap reads only plain files: memory stays bounded (the readers' fixed buffers) whatever
//! the file size.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::frame::LinkType;
use crate::time::Timestamp;

/// One frame as read from a file, borrowed from the reader's buffer.
pub struct RawFrame<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// Captured bytes.
    pub data: &'a [u8],
    /// Length on the wire.
    pub orig_len: u32,
}

/// Why a capture file could not be read. Shown to the user as one line.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: no such file")]
    NotFound { path: String },
    #[error("{path}: permission denied")]
    PermissionDenied { path: String },
    #[error("{path}: not a pcap or pcapng capture ({detail})")]
    NotACapture { path: String, detail: String },
    #[error("{path}: {detail}")]
    Other { path: String, detail: String },
}

/// A problem met part-way through a file; frames before it were analysed. Typed so callers tell a
/// cut file from a reader hand-over by kind; the text (`Display`) is what the JSON carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadWarning {
    /// libpcap stopped reading after `frames` frames. `cut` when the file ends inside a record.
    #[error("stopped after {frames} frame{}: {message}", plural(*frames))]
    Stopped {
        frames: u64,
        /// libpcap's own message.
        message: String,
        cut: bool,
    },
    /// libpcap refused a pcapng part-way (an interface with another link type) and the built-in
    /// reader could not take over.
    #[error("stopped after {frames} frame{}: {message} ({why})", plural(*frames))]
    NoFallback {
        frames: u64,
        message: String,
        why: PureReadError,
    },
    /// libpcap refused a pcapng part-way; the built-in reader goes on from there (informational).
    #[error("libpcap stopped after {frames} frame{} ({message}); read on with the built-in pcapng reader", plural(*frames))]
    ReadOn { frames: u64, message: String },
    /// The built-in reader (compressed file, or after [`ReadWarning::ReadOn`]) stopped.
    #[error("stopped after {frames} frames: {error}")]
    PureStopped { frames: u64, error: PureReadError },
}

impl ReadWarning {
    /// The file ends inside a record (it was cut while written or copied): the CLI says so on
    /// stderr, since the JSON alone would look like a short capture.
    pub fn file_cut(&self) -> bool {
        matches!(self, ReadWarning::Stopped { cut: true, .. })
    }
}

/// "s" unless one.
fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Why the built-in (pure-Rust) reader could not read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PureReadError {
    /// The file could not be opened again for the built-in reader.
    #[error("{0}")]
    Open(String),
    /// `pcap-file`'s error, as it words it.
    #[error("{0}")]
    Format(String),
    /// An Enhanced Packet Block names an interface the section did not describe.
    #[error("packet for unknown interface {0}")]
    UnknownInterface(u32),
    /// The built-in reader found fewer packets than libpcap had already delivered.
    #[error("the file has fewer packets than libpcap read")]
    FewerPackets,
}

/// Streaming reader over a capture file: constant memory whatever the file size.
pub struct CaptureFile {
    /// libpcap's handle; `None` for a compressed file, read by `fallback` from the start.
    cap: Option<pcap::Capture<pcap::Offline>>,
    link: LinkType,
    dlt: i32,
    format: Format,
    file_size: u64,
    bytes_read: u64,
    frames: u64,
    done: bool,
    path: std::path::PathBuf,
    /// The current frame's bytes.
    buf: Vec<u8>,
    /// Set when libpcap gave up on a pcapng file that our own reader can go on with, and from
    /// the start for a compressed file.
    fallback: Option<PureReader>,
    /// Compressed bytes read so far, for a gzip file (progress counts those).
    compressed: Option<Arc<AtomicU64>>,
    /// The stdio buffer under libpcap's `FILE` (see [`open_buffered`]). Declared after `cap`
    /// so that it is freed only after `cap` has closed the `FILE`.
    _stdio_buf: Option<Box<[u8]>>,
}

/// A libpcap handle and the stdio buffer under it (which must outlive it).
type BufferedCapture = (pcap::Capture<pcap::Offline>, Box<[u8]>);

/// Size of the stdio buffer libpcap reads capture files through.
const STDIO_BUFFER: usize = 32 * 1024;

extern "C" {
    // libpcap: like pcap_open_offline_with_tstamp_precision, on an open stdio stream, which
    // pcap_close closes.
    fn pcap_fopen_offline_with_tstamp_precision(
        fp: *mut libc::FILE,
        precision: libc::c_uint,
        errbuf: *mut libc::c_char,
    ) -> *mut libc::c_void;
}

/// Open `path` for libpcap through a `FILE` with a 32 KiB buffer.
///
/// Why: libpcap reads offline files with `fread` on a stdio stream whose buffer is the file
/// system block size (4 KiB), so a 1 GB capture costs ~250 000 `read(2)` calls, about a tenth of
/// the whole replay time on the machines we measured. 32 KiB cuts that eightfold while the buffer
/// stays in the CPU's L2 cache: with 256 KiB and 1 MiB the kernel's copy into the buffer cost more
/// than the saved calls (CPU seconds for 200 MB: 4 KiB 0.58-0.85, 16-64 KiB 0.49-0.66, 256 KiB
/// 0.62-0.78, 1 MiB 0.74-0.85). `pcap::Capture` cannot be given a stream of
/// our own, so this opens the stream, sets its buffer before any read, hands it to libpcap and
/// wraps the handle (`Capture: From<NonNull<pcap_t>>`). `None` when the stream cannot be set up
/// this way (the caller then opens the file the plain way, which also words the error);
/// `Some(Err)` with libpcap's message when libpcap refuses the file.
#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
fn open_buffered(path: &Path) -> Option<Result<BufferedCapture, LibpcapRefused>> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = vec![0u8; STDIO_BUFFER].into_boxed_slice();
    // SAFETY: `cpath` and the mode are NUL-terminated; `buf` is a heap block of STDIO_BUFFER
    // bytes that the caller keeps alive (CaptureFile::_stdio_buf) until libpcap has closed the
    // stream; setvbuf is called before any other operation on the stream, as C requires.
    unsafe {
        let fp = libc::fopen(cpath.as_ptr(), c"rb".as_ptr());
        if fp.is_null() {
            return None;
        }
        if libc::setvbuf(fp, buf.as_mut_ptr().cast(), libc::_IOFBF, STDIO_BUFFER) != 0 {
            libc::fclose(fp);
            return None;
        }
        let mut errbuf = [0 as libc::c_char; 256]; // PCAP_ERRBUF_SIZE
                                                   // 1 = PCAP_TSTAMP_PRECISION_NANO.
        let handle = pcap_fopen_offline_with_tstamp_precision(fp, 1, errbuf.as_mut_ptr());
        let Some(handle) = std::ptr::NonNull::new(handle.cast()) else {
            libc::fclose(fp);
            let msg = std::ffi::CStr::from_ptr(errbuf.as_ptr()).to_string_lossy();
            return Some(Err(LibpcapRefused(msg.into_owned())));
        };
        // The handle now owns `fp`; Capture closes it (pcap_close) when dropped.
        Some(Ok((pcap::Capture::from(handle), buf)))
    }
}

extern "C" {
    // libpcap: the stdio stream an offline handle reads (NULL for a live one).
    fn pcap_file(p: *mut libc::c_void) -> *mut libc::FILE;
}

/// Move the stream under an offline libpcap handle to `offset`: its next read is the record
/// there. libpcap reads a classic pcap record by record with `fread` and keeps no read-ahead of
/// its own, so repositioning the stream between reads is what its `pcap_file` is for.
#[allow(unsafe_code)] // two libc/libpcap calls the pcap crate does not wrap; see SAFETY below
fn seek_stream(cap: &pcap::Capture<pcap::Offline>, offset: u64) -> bool {
    let Ok(off) = libc::off_t::try_from(offset) else {
        return false;
    };
    // SAFETY: `cap.as_ptr()` is the live handle `cap` owns; `pcap_file` only returns its
    // stream pointer (or NULL, checked), which stays valid while `cap` lives; `fseeko` on an open
    // stream is defined and flushes stdio's buffer.
    unsafe {
        let fp = pcap_file(cap.as_ptr().cast());
        if fp.is_null() {
            return false;
        }
        libc::fseeko(fp, off, libc::SEEK_SET) == 0
    }
}

/// Where the stream under an offline libpcap handle is (the next block libpcap reads).
#[allow(unsafe_code)] // two libc/libpcap calls the pcap crate does not wrap; see SAFETY below
fn stream_position(cap: &pcap::Capture<pcap::Offline>) -> Option<u64> {
    // SAFETY: as in `seek_stream`: the handle is live, its stream pointer checked for NULL;
    // `ftello` only reads the position of an open stream.
    let pos = unsafe {
        let fp = pcap_file(cap.as_ptr().cast());
        if fp.is_null() {
            return None;
        }
        libc::ftello(fp)
    };
    u64::try_from(pos).ok()
}

/// libpcap refused to open a file: its message, which is all it gives (a C string).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct LibpcapRefused(String);

/// A byte stream for the pure-Rust readers: a plain file, or a gzip file's decompressed bytes.
type Stream = Box<dyn Read + Send>;

/// Counts the bytes read from the underlying (compressed) file, for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The two magic bytes of a gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The decompressed stream of a gzip file (all its members, as `gzip -d` would), counting the
/// compressed bytes read into `count`.
fn gunzip(path: &Path, count: &Arc<AtomicU64>) -> io::Result<Stream> {
    let f = File::open(path)?;
    let counted = Counting {
        inner: f,
        count: Arc::clone(count),
    };
    Ok(Box::new(flate2::read::MultiGzDecoder::new(
        io::BufReader::with_capacity(1 << 16, counted),
    )))
}

/// The pure-Rust readers: pcapng where libpcap stops, and both formats of a compressed file.
enum PureReader {
    Ng(NgFallback),
    Pcap {
        reader: pcap_file::pcap::PcapReader<Stream>,
        link: LinkType,
    },
}

impl PureReader {
    /// Next packet: (timestamp, link, orig_len), data into `buf`.
    fn next(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<Option<(Timestamp, LinkType, u32)>, PureReadError> {
        match self {
            PureReader::Ng(ng) => ng.next(buf),
            PureReader::Pcap { reader, link } => match reader.next_packet() {
                None => Ok(None),
                Some(Err(e)) => Err(PureReadError::Format(e.to_string())),
                Some(Ok(p)) => {
                    let ts = Timestamp(i64::try_from(p.timestamp.as_nanos()).unwrap_or(i64::MAX));
                    buf.clear();
                    buf.extend_from_slice(&p.data);
                    Ok(Some((ts, *link, p.orig_len)))
                }
            },
        }
    }
}

/// Reads on where libpcap stops on a pcapng whose interfaces have different link types (libpcap
/// refuses those; the pure-Rust `pcap-file` reader does not), with each frame's link type taken
/// from its own interface. Also reads compressed pcapng files.
struct NgFallback {
    reader: pcap_file::pcapng::PcapNgReader<Stream>,
    /// (link type, if_tsresol) per interface of the current section.
    interfaces: Vec<(LinkType, u8)>,
}

impl NgFallback {
    fn open(path: &Path) -> Result<NgFallback, PureReadError> {
        let f = File::open(path).map_err(|e| PureReadError::Open(e.to_string()))?;
        NgFallback::over(Box::new(io::BufReader::with_capacity(1 << 16, f)))
    }

    fn over(stream: Stream) -> Result<NgFallback, PureReadError> {
        let reader = pcap_file::pcapng::PcapNgReader::new(stream)
            .map_err(|e| PureReadError::Format(e.to_string()))?;
        Ok(NgFallback {
            reader,
            interfaces: Vec::new(),
        })
    }

    /// Next packet: (timestamp, link, orig_len), data into `buf`. Skips non-packet blocks.
    fn next(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<Option<(Timestamp, LinkType, u32)>, PureReadError> {
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
        use pcap_file::pcapng::Block;
        loop {
            let block = match self.reader.next_block() {
                None => return Ok(None),
                Some(Err(e)) => return Err(PureReadError::Format(e.to_string())),
                Some(Ok(b)) => b,
            };
            match block {
                Block::SectionHeader(_) => self.interfaces.clear(),
                Block::InterfaceDescription(idb) => {
                    let res = idb
                        .options
                        .iter()
                        .find_map(|o| match o {
                            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                            _ => None,
                        })
                        .unwrap_or(6);
                    let dlt = i32::try_from(u32::from(idb.linktype)).unwrap_or(-1);
                    self.interfaces.push((LinkType::from_dlt(dlt), res));
                }
                Block::EnhancedPacket(epb) => {
                    let (link, res) = usize::try_from(epb.interface_id)
                        .ok()
                        .and_then(|i| self.interfaces.get(i).copied())
                        .ok_or(PureReadError::UnknownInterface(epb.interface_id))?;
                    // pcap-file hands over the raw timestamp units as "nanoseconds".
                    let units = epb.timestamp.as_nanos();
                    let ts =
                        Timestamp(i64::try_from(units_to_nanos(units, res)).unwrap_or(i64::MAX));
                    buf.clear();
                    buf.extend_from_slice(&epb.data);
                    return Ok(Some((ts, link, epb.original_len)));
                }
                Block::SimplePacket(spb) => {
                    let link = self
                        .interfaces
                        .first()
                        .map(|i| i.0)
                        .unwrap_or(LinkType::Unsupported(-1));
                    buf.clear();
                    buf.extend_from_slice(&spb.data);
                    return Ok(Some((Timestamp(0), link, spb.original_len)));
                }
                _ => {}
            }
        }
    }
}

/// Raw pcapng timestamp units to nanoseconds, per the if_tsresol option (power of 10, or of 2
/// when the high bit is set).
fn units_to_nanos(units: u128, res: u8) -> u128 {
    if res & 0x80 != 0 {
        let shift = u32::from(res & 0x7f).min(127);
        units.saturating_mul(1_000_000_000) >> shift
    } else {
        let res = u32::from(res);
        if res <= 9 {
            units.saturating_mul(10u128.pow(9 - res))
        } else {
            units / 10u128.pow((res - 9).min(38))
        }
    }
}

/// Container format, told apart by the first four bytes of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Classic pcap; the value is the per-record header length (16, or 24 for the old
    /// "modified" Kuznetzov format).
    Pcap {
        record_header: u64,
    },
    PcapNg,
}

/// Classic pcap file header length.
const PCAP_FILE_HEADER: u64 = 24;

impl Format {
    fn from_magic(m: [u8; 4]) -> Option<Format> {
        match m {
            // microsecond and nanosecond pcap, either byte order
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d] => Some(Format::Pcap { record_header: 16 }),
            // "modified" pcap (Alexey Kuznetzov's patches), still read by libpcap
            [0x34, 0xcd, 0xb2, 0xa1] | [0xa1, 0xb2, 0xcd, 0x34] => {
                Some(Format::Pcap { record_header: 24 })
            }
            // pcapng Section Header Block type, a palindrome
            [0x0a, 0x0d, 0x0d, 0x0a] => Some(Format::PcapNg),
            _ => None,
        }
    }
}

/// Why a file is not a capture, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum NotACapture {
    #[error("starts with bytes {:02x} {:02x} {:02x} {:02x}", .0[0], .0[1], .0[2], .0[3])]
    Magic([u8; 4]),
    #[error("file is empty")]
    Empty,
    #[error("only {0} bytes long")]
    Short(usize),
}

/// The container format from a file's first bytes, or why it is not a capture.
fn format_of(magic: &[u8]) -> Result<Format, NotACapture> {
    match <[u8; 4]>::try_from(magic) {
        Ok(m) => Format::from_magic(m).ok_or(NotACapture::Magic(m)),
        Err(_) if magic.is_empty() => Err(NotACapture::Empty),
        Err(_) => Err(NotACapture::Short(magic.len())),
    }
}

fn io_error(path: &str, e: &io::Error) -> OpenError {
    match e.kind() {
        io::ErrorKind::NotFound => OpenError::NotFound {
            path: path.to_string(),
        },
        io::ErrorKind::PermissionDenied => OpenError::PermissionDenied {
            path: path.to_string(),
        },
        _ => OpenError::Other {
            path: path.to_string(),
            detail: e.to_string(),
        },
    }
}

/// The libpcap message without the crate's "libpcap error: " prefix.
fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(msg) => msg.clone(),
        other => other.to_string(),
    }
}

impl CaptureFile {
    /// Open `path` with nanosecond precision. Distinguishes missing, unreadable and non-capture
    /// files so the CLI can print a clear one-line message.
    pub fn open(path: &Path) -> Result<CaptureFile, OpenError> {
        let shown = path.display().to_string();
        let other = |detail: String| OpenError::Other {
            path: shown.clone(),
            detail,
        };

        let meta = std::fs::metadata(path).map_err(|e| io_error(&shown, &e))?;
        if meta.is_dir() {
            return Err(other("is a directory".to_string()));
        }
        let file = File::open(path).map_err(|e| io_error(&shown, &e))?;
        let mut magic = Vec::with_capacity(4);
        file.take(4)
            .read_to_end(&mut magic)
            .map_err(|e| io_error(&shown, &e))?;
        if magic.starts_with(&GZIP_MAGIC) {
            return CaptureFile::open_gzip(path, meta.len());
        }
        let format = format_of(&magic).map_err(|why| OpenError::NotACapture {
            path: shown.clone(),
            detail: why.to_string(),
        })?;

        let (cap, stdio_buf) = match open_buffered(path) {
            Some(Ok((cap, buf))) => (cap, Some(buf)),
            Some(Err(refused)) => return Err(other(refused.0)),
            None => (
                pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano)
                    .map_err(|e| other(pcap_message(&e)))?,
                None,
            ),
        };
        let dlt = cap.get_datalink().0;
        let bytes_read = match format {
            Format::Pcap { .. } => PCAP_FILE_HEADER.min(meta.len()),
            // Section and interface blocks vary in size; they are accounted for at the end.
            Format::PcapNg => 0,
        };
        Ok(CaptureFile {
            cap: Some(cap),
            link: LinkType::from_dlt(dlt),
            dlt,
            format,
            file_size: meta.len(),
            bytes_read,
            frames: 0,
            done: false,
            fallback: None,
            compressed: None,
            path: path.to_path_buf(),
            buf: Vec::with_capacity(65_536),
            _stdio_buf: stdio_buf,
        })
    }

    /// Open a gzip-compressed capture: the pure-Rust reader of its format over the decompressed
    /// stream. The stream is opened twice (once to read the format's magic) rather than
    /// buffered, so nothing of it is kept.
    fn open_gzip(path: &Path, file_size: u64) -> Result<CaptureFile, OpenError> {
        let shown = path.display().to_string();
        let other = |detail: String| OpenError::Other {
            path: shown.clone(),
            detail: format!("gzip-compressed: {detail}"),
        };
        let count = Arc::new(AtomicU64::new(0));
        let mut magic = Vec::with_capacity(4);
        gunzip(path, &count)
            .and_then(|s| s.take(4).read_to_end(&mut magic))
            .map_err(|e| other(e.to_string()))?;
        let format = format_of(&magic).map_err(|why| OpenError::NotACapture {
            path: shown.clone(),
            detail: format!("gzip-compressed content: {why}"),
        })?;
        count.store(0, Ordering::Relaxed);
        let stream = gunzip(path, &count).map_err(|e| other(e.to_string()))?;
        let (reader, dlt) = match format {
            Format::PcapNg => {
                // The first interface's link type is only known once its block is read; frames
                // carry their own.
                (
                    PureReader::Ng(NgFallback::over(stream).map_err(|e| other(e.to_string()))?),
                    -1,
                )
            }
            Format::Pcap { record_header: 16 } => {
                let reader =
                    pcap_file::pcap::PcapReader::new(stream).map_err(|e| other(e.to_string()))?;
                let dlt = i32::try_from(u32::from(reader.header().datalink)).unwrap_or(-1);
                let link = LinkType::from_dlt(dlt);
                (PureReader::Pcap { reader, link }, dlt)
            }
            Format::Pcap { .. } => {
                return Err(other(
                    "the \"modified\" pcap format is read only uncompressed".to_string(),
                ))
            }
        };
        Ok(CaptureFile {
            cap: None,
            link: LinkType::from_dlt(dlt),
            dlt,
            format,
            file_size,
            bytes_read: 0,
            frames: 0,
            done: false,
            fallback: Some(reader),
            compressed: Some(count),
            path: path.to_path_buf(),
            buf: Vec::with_capacity(65_536),
            _stdio_buf: None,
        })
    }

    /// Where the next frame's record (pcapng: block) starts in the file, exactly, while libpcap
    /// reads an uncompressed file: classic pcap counts it ([`CaptureFile::bytes_read`]), pcapng
    /// asks the stream. None for a compressed file and after the built-in reader took over.
    pub fn next_record_offset(&self) -> Option<u64> {
        if self.compressed.is_some() || self.fallback.is_some() || self.done {
            return None;
        }
        match self.format {
            Format::Pcap { .. } => Some(self.bytes_read),
            Format::PcapNg => self.cap.as_ref().and_then(stream_position),
        }
    }

    /// Go on reading at the frame `frames_before` (0-based: that many frames come before it)
    /// whose record starts at byte `offset`, as [`CaptureFile::next_record_offset`] gave it when
    /// that frame was next. Why: opening one connection of a big capture (the TUI's detail pane)
    /// reads from a checkpoint near it, not the whole file again.
    ///
    /// An uncompressed file is seeked (pcapng: after its section and first interface blocks were
    /// read at open; an interface block that the seek skips leaves its frames unreadable, so the
    /// caller reads from the start when what it wanted is not found). A compressed file, or no
    /// offset, is read again from the start, skipping `frames_before` frames: slower, never wrong
    /// (the reading problems met on the way were reported by the first pass and are skipped).
    /// Call on a freshly opened file; a seek that fails leaves it as it was.
    pub fn seek_to_frame(&mut self, frames_before: u64, offset: Option<u64>) {
        let lowest = match self.format {
            Format::Pcap { .. } => PCAP_FILE_HEADER,
            Format::PcapNg => 1,
        };
        let offset = offset.filter(|o| *o >= lowest && *o <= self.file_size);
        let seekable = self.compressed.is_none() && self.fallback.is_none() && self.frames == 0;
        if let Some(offset) = offset.filter(|_| seekable) {
            if let Some(cap) = self.cap.as_ref() {
                if seek_stream(cap, offset) {
                    self.bytes_read = offset;
                    self.frames = frames_before;
                    return;
                }
            }
        }
        while self.frames < frames_before {
            match self.next_frame() {
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => break,
            }
        }
    }

    /// True when the file is gzip-compressed.
    pub fn is_compressed(&self) -> bool {
        self.compressed.is_some()
    }

    /// Link type of the capture (of its first interface for pcapng).
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// The raw DLT/LINKTYPE number libpcap reports, for messages about unsupported link types.
    pub fn dlt(&self) -> i32 {
        self.dlt
    }

    /// True for pcapng files, false for classic pcap.
    pub fn is_pcapng(&self) -> bool {
        self.format == Format::PcapNg
    }

    /// Frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// Size of the file in bytes (for progress bars).
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Bytes of the file consumed so far (approximate is fine: sum of record sizes + headers).
    ///
    /// Exact for classic pcap; for pcapng each frame counts as a minimal Enhanced Packet Block,
    /// so the figure runs a little low until the end, where it becomes the file size. Never
    /// exceeds [`CaptureFile::file_size`].
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Next frame, `Ok(None)` at the end. A file that ends mid-record or that libpcap stops reading
    /// part-way (e.g. a pcapng interface with another link type) yields `Err(ReadWarning)` once and
    /// then `Ok(None)`.
    ///
    /// The warning text is libpcap's message prefixed with how many frames were read, e.g.
    /// `stopped after 12 frames: truncated dump file; tried to read 1514 captured bytes, only
    /// got 80`.
    ///
    /// A pcapng file whose interfaces have different link types, which libpcap refuses part-way,
    /// is read on with the built-in pcapng reader: one informational `Err(ReadWarning)` says so,
    /// then frames continue.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame<'_>>, ReadWarning> {
        if self.fallback.is_some() {
            return match self.fallback_step() {
                Step::Frame { ts, link, orig_len } => Ok(Some(RawFrame {
                    ts,
                    link,
                    data: &self.buf,
                    orig_len,
                })),
                Step::End => Ok(None),
                Step::Warn(w) => Err(w),
            };
        }
        if self.done {
            return Ok(None);
        }
        let Some(cap) = self.cap.as_mut() else {
            return Ok(None);
        };
        // The frame is borrowed straight from libpcap's buffer (valid until the next read): no
        // copy per frame. Only `self.cap` stays borrowed, so the error arm may touch the rest.
        match cap.next_packet() {
            Ok(p) => {
                let caplen = u64::from(p.header.caplen);
                let record = match self.format {
                    Format::Pcap { record_header } => record_header.saturating_add(caplen),
                    // EPB: 28 bytes of header, data padded to 4, 4-byte trailing length.
                    Format::PcapNg => 32u64.saturating_add(caplen.div_ceil(4).saturating_mul(4)),
                };
                self.bytes_read = self.bytes_read.saturating_add(record).min(self.file_size);
                self.frames = self.frames.saturating_add(1);
                // With Precision::Nano libpcap puts nanoseconds in the tv_usec field.
                // time_t/suseconds_t are i64 on 64-bit Linux but not everywhere.
                #[allow(clippy::useless_conversion)]
                let ts = Timestamp::from_nanos(
                    i64::from(p.header.ts.tv_sec),
                    i64::from(p.header.ts.tv_usec),
                );
                Ok(Some(RawFrame {
                    ts,
                    link: self.link,
                    data: p.data,
                    orig_len: p.header.len,
                }))
            }
            Err(pcap::Error::NoMorePackets) => {
                self.done = true;
                self.bytes_read = self.file_size;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                let message = pcap_message(&e);
                let frames = self.frames;
                if self.format == Format::PcapNg && message.contains("different from the type") {
                    return match start_fallback(&self.path, self.frames, &mut self.buf) {
                        Ok(fb) => {
                            self.fallback = Some(PureReader::Ng(fb));
                            Err(ReadWarning::ReadOn { frames, message })
                        }
                        Err(why) => Err(ReadWarning::NoFallback {
                            frames,
                            message,
                            why,
                        }),
                    };
                }
                // libpcap words a file that ends inside a record "truncated dump file"; its
                // message is the only place that says so, hence the one look at its text here.
                let cut = message.contains("truncated");
                Err(ReadWarning::Stopped {
                    frames,
                    message,
                    cut,
                })
            }
        }
    }

    fn fallback_step(&mut self) -> Step {
        let Some(fb) = self.fallback.as_mut() else {
            return Step::End;
        };
        match fb.next(&mut self.buf) {
            Ok(Some((ts, link, orig_len))) => {
                self.frames = self.frames.saturating_add(1);
                self.bytes_read = match &self.compressed {
                    Some(count) => count.load(Ordering::Relaxed),
                    None => {
                        let caplen = self.buf.len() as u64;
                        let record = 32u64.saturating_add(caplen.div_ceil(4).saturating_mul(4));
                        self.bytes_read.saturating_add(record)
                    }
                }
                .min(self.file_size);
                Step::Frame { ts, link, orig_len }
            }
            Ok(None) => {
                self.fallback = None;
                self.done = true;
                self.bytes_read = self.file_size;
                Step::End
            }
            Err(e) => {
                self.fallback = None;
                self.done = true;
                Step::Warn(ReadWarning::PureStopped {
                    frames: self.frames,
                    error: e,
                })
            }
        }
    }
}

/// Open the pcapng fallback and skip the frames libpcap already delivered.
fn start_fallback(
    path: &Path,
    frames: u64,
    buf: &mut Vec<u8>,
) -> Result<NgFallback, PureReadError> {
    let mut fb = NgFallback::open(path)?;
    for _ in 0..frames {
        if fb.next(buf)?.is_none() {
            return Err(PureReadError::FewerPackets);
        }
    }
    Ok(fb)
}

/// What one fallback read produced (frame data is in `CaptureFile::buf`).
enum Step {
    Frame {
        ts: Timestamp,
        link: LinkType,
        orig_len: u32,
    },
    End,
    Warn(ReadWarning),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Minimal hand-rolled pcap writer (independent of `pcapwrite`), little- or big-endian.
    struct Pcap {
        bytes: Vec<u8>,
        big_endian: bool,
    }

    impl Pcap {
        fn new(magic: u32, big_endian: bool, linktype: u32) -> Pcap {
            let mut p = Pcap {
                bytes: Vec::new(),
                big_endian,
            };
            p.u32(magic);
            p.u16(2);
            p.u16(4);
            p.u32(0); // thiszone
            p.u32(0); // sigfigs
            p.u32(65535); // snaplen
            p.u32(linktype);
            p
        }
        fn u16(&mut self, v: u16) {
            let b = if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
        }
        fn u32(&mut self, v: u32) {
            let b = if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
        }
        fn record(&mut self, secs: u32, frac: u32, data: &[u8], orig_len: u32) {
            self.u32(secs);
            self.u32(frac);
            self.u32(data.len() as u32);
            self.u32(orig_len);
            self.bytes.extend_from_slice(data);
        }
    }

    const MICRO: u32 = 0xa1b2_c3d4;
    const NANO: u32 = 0xa1b2_3c4d;

    fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    /// (ts, data, orig_len) of every frame, plus the warning if any, checking that nothing
    /// comes after the end or the warning.
    type Frames = Vec<(Timestamp, Vec<u8>, u32)>;

    fn read_all(cf: &mut CaptureFile) -> (Frames, Option<ReadWarning>) {
        let mut out = Vec::new();
        let mut warning = None;
        loop {
            match cf.next_frame() {
                Ok(Some(f)) => out.push((f.ts, f.data.to_vec(), f.orig_len)),
                Ok(None) => break,
                Err(w) => {
                    warning = Some(w);
                    assert!(matches!(cf.next_frame(), Ok(None)));
                    break;
                }
            }
        }
        assert!(matches!(cf.next_frame(), Ok(None)));
        (out, warning)
    }

    #[test]
    fn micro_pcap_both_byte_orders() {
        for big_endian in [false, true] {
            let mut p = Pcap::new(MICRO, big_endian, 1);
            p.record(1_700_000_000, 123_456, &[1, 2, 3, 4], 4);
            p.record(1_700_000_001, 999_999, &[5; 60], 1514);
            let f = write_temp(&p.bytes);
            let mut cf = CaptureFile::open(f.path()).unwrap();
            assert_eq!(cf.link_type(), LinkType::Ethernet);
            assert_eq!(cf.dlt(), 1);
            assert!(!cf.is_pcapng());
            assert_eq!(cf.file_size(), 24 + 16 + 4 + 16 + 60);
            assert_eq!(cf.bytes_read(), 24);
            {
                let fr = cf.next_frame().unwrap().unwrap();
                assert_eq!(fr.ts, Timestamp(1_700_000_000_123_456_000));
                assert_eq!(fr.data, &[1, 2, 3, 4]);
                assert_eq!(fr.orig_len, 4);
                assert_eq!(fr.link, LinkType::Ethernet);
            }
            assert_eq!(cf.bytes_read(), 24 + 16 + 4);
            let (rest, warning) = read_all(&mut cf);
            assert_eq!(warning, None);
            assert_eq!(
                rest,
                vec![(Timestamp(1_700_000_001_999_999_000), vec![5; 60], 1514)]
            );
            assert_eq!(cf.bytes_read(), cf.file_size());
            assert_eq!(cf.frames_read(), 2);
        }
    }

    #[test]
    fn nano_pcap_keeps_nanoseconds() {
        let mut p = Pcap::new(NANO, false, 276);
        p.record(1_709_210_096, 789_012_345, &[9; 30], 30);
        let f = write_temp(&p.bytes);
        let mut cf = CaptureFile::open(f.path()).unwrap();
        assert_eq!(cf.link_type(), LinkType::LinuxSll2);
        let (frames, warning) = read_all(&mut cf);
        assert_eq!(warning, None);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, Timestamp(1_709_210_096_789_012_345));
    }

    #[test]
    fn link_types_come_through() {
        for (dlt, want) in [
            (0, LinkType::Null),
            (101, LinkType::Raw),
            (113, LinkType::LinuxSll),
            (229, LinkType::Ipv6),
        ] {
            let p = Pcap::new(MICRO, false, dlt);
            let f = write_temp(&p.bytes);
            let mut cf = CaptureFile::open(f.path()).unwrap();
            assert_eq!(cf.link_type(), want, "DLT {dlt}");
            assert!(matches!(cf.next_frame(), Ok(None)));
        }
    }

    #[test]
    fn cut_mid_record_warns_after_the_good_frames() {
        let mut p = Pcap::new(MICRO, false, 1);
        p.record(10, 0, &[1; 20], 20);
        p.record(11, 0, &[2; 20], 20);
        p.record(12, 0, &[3; 100], 100);
        let whole = p.bytes.len();
        // Cut inside the third record's data, then inside its header.
        for cut in [whole - 50, whole - 100 - 10] {
            let f = write_temp(&p.bytes[..cut]);
            let mut cf = CaptureFile::open(f.path()).unwrap();
            let (frames, warning) = read_all(&mut cf);
            assert_eq!(frames.len(), 2, "cut {cut}");
            assert_eq!(frames[1].1, vec![2; 20]);
            let w = warning.expect("a warning");
            assert!(
                matches!(
                    w,
                    ReadWarning::Stopped {
                        frames: 2,
                        cut: true,
                        ..
                    }
                ),
                "{w:?}"
            );
            assert!(w.file_cut());
        }
    }

    #[test]
    fn text_file_is_not_a_capture() {
        let f = write_temp(b"<?xml version=\"1.0\"?><EventNotificationAlert/>");
        match CaptureFile::open(f.path()) {
            Err(OpenError::NotACapture { detail, .. }) => {
                assert_eq!(detail, "starts with bytes 3c 3f 78 6d")
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("opened a text file"),
        }
        for (bytes, want) in [
            (&b""[..], "file is empty"),
            (&b"ab"[..], "only 2 bytes long"),
        ] {
            let f = write_temp(bytes);
            match CaptureFile::open(f.path()) {
                Err(OpenError::NotACapture { detail, .. }) => assert_eq!(detail, want),
                Err(e) => panic!("wrong error {e}"),
                Ok(_) => panic!("opened {bytes:?}"),
            }
        }
    }

    #[test]
    fn missing_path_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pcap");
        match CaptureFile::open(&missing) {
            Err(e @ OpenError::NotFound { .. }) => {
                assert_eq!(
                    e.to_string(),
                    format!("{}: no such file", missing.display())
                )
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("opened a missing file"),
        }
        match CaptureFile::open(dir.path()) {
            Err(OpenError::Other { detail, .. }) => assert_eq!(detail, "is a directory"),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("opened a directory"),
        }
    }

    #[test]
    fn unreadable_file_is_permission_denied() {
        use std::os::unix::fs::PermissionsExt;
        let p = Pcap::new(MICRO, false, 1);
        let f = write_temp(&p.bytes);
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o000)).unwrap();
        if File::open(f.path()).is_ok() {
            // Running as root: permissions do not apply, nothing to check.
            return;
        }
        assert!(matches!(
            CaptureFile::open(f.path()),
            Err(OpenError::PermissionDenied { .. })
        ));
    }

    #[test]
    fn bad_pcap_header_is_reported_by_libpcap() {
        // Right magic, header cut short.
        let f = write_temp(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]);
        match CaptureFile::open(f.path()) {
            Err(OpenError::Other { detail, .. }) => {
                assert!(detail.contains("truncated"), "{detail}")
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("opened a cut header"),
        }
    }

    // ---- pcapng, hand-built (little-endian) ----

    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(0u8, padded - body.len()));
        out.extend_from_slice(&total.to_le_bytes());
    }

    fn shb(out: &mut Vec<u8>) {
        let mut b = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        block(out, 0x0a0d_0d0a, &b);
    }

    fn idb(out: &mut Vec<u8>, linktype: u16) {
        let mut b = linktype.to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&65535u32.to_le_bytes());
        block(out, 1, &b);
    }

    /// Enhanced Packet Block; `micros` in the default microsecond resolution.
    fn epb(out: &mut Vec<u8>, iface: u32, micros: u64, data: &[u8], orig_len: u32) {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(micros as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&orig_len.to_le_bytes());
        b.extend_from_slice(data);
        block(out, 6, &b);
    }

    #[test]
    fn pcapng_two_interfaces_same_link_type() {
        let mut out = Vec::new();
        shb(&mut out);
        idb(&mut out, 1);
        idb(&mut out, 1);
        epb(&mut out, 0, 1_700_000_000_123_456, &[7; 42], 42);
        epb(&mut out, 1, 1_700_000_002_000_001, &[8; 13], 1500);
        let f = write_temp(&out);
        let mut cf = CaptureFile::open(f.path()).unwrap();
        assert!(cf.is_pcapng());
        assert_eq!(cf.link_type(), LinkType::Ethernet);
        let (frames, warning) = read_all(&mut cf);
        assert_eq!(warning, None);
        assert_eq!(
            frames,
            vec![
                (Timestamp(1_700_000_000_123_456_000), vec![7; 42], 42),
                (Timestamp(1_700_000_002_000_001_000), vec![8; 13], 1500),
            ]
        );
        assert_eq!(cf.bytes_read(), cf.file_size());
    }

    #[test]
    fn pcapng_interface_with_other_link_type_is_read_on_by_the_fallback() {
        let mut out = Vec::new();
        shb(&mut out);
        idb(&mut out, 1);
        epb(&mut out, 0, 5_000_000, &[7; 42], 42);
        idb(&mut out, 113);
        epb(&mut out, 1, 6_000_000, &[8; 40], 40);
        epb(&mut out, 0, 7_000_000, &[9; 44], 44);
        let f = write_temp(&out);
        let mut cf = CaptureFile::open(f.path()).unwrap();
        let mut frames = Vec::new();
        let mut warnings = Vec::new();
        for _ in 0..10 {
            match cf.next_frame() {
                Ok(Some(fr)) => frames.push((fr.ts, fr.link, fr.data.to_vec())),
                Ok(None) => break,
                Err(w) => warnings.push(w),
            }
        }
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            matches!(warnings[0], ReadWarning::ReadOn { frames: 1, .. }),
            "{:?}",
            warnings[0]
        );
        assert!(!warnings[0].file_cut());
        assert_eq!(frames.len(), 3);
        // libpcap read the first; the fallback the rest, each with its own interface's link type
        // and the default microsecond resolution.
        assert_eq!(
            frames[0],
            (Timestamp(5_000_000_000), LinkType::Ethernet, vec![7; 42])
        );
        assert_eq!(
            frames[1],
            (Timestamp(6_000_000_000), LinkType::LinuxSll, vec![8; 40])
        );
        assert_eq!(
            frames[2],
            (Timestamp(7_000_000_000), LinkType::Ethernet, vec![9; 44])
        );
        assert_eq!(cf.bytes_read(), cf.file_size());
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_pcap_reads_like_the_plain_file() {
        for (magic, big_endian) in [(MICRO, false), (NANO, true)] {
            let mut p = Pcap::new(magic, big_endian, 113);
            p.record(1_700_000_000, 123_456, &[1, 2, 3, 4], 4);
            p.record(1_700_000_001, 999_999, &[5; 60], 1514);
            let plain = write_temp(&p.bytes);
            let packed = write_temp(&gzip(&p.bytes));
            let mut a = CaptureFile::open(plain.path()).unwrap();
            let mut b = CaptureFile::open(packed.path()).unwrap();
            assert!(!a.is_compressed() && b.is_compressed());
            assert_eq!(b.link_type(), LinkType::LinuxSll);
            assert_eq!(b.dlt(), 113);
            assert!(!b.is_pcapng());
            let (fa, wa) = read_all(&mut a);
            let (fb, wb) = read_all(&mut b);
            assert_eq!((wa, wb), (None, None));
            assert_eq!(fa.len(), 2);
            assert_eq!(fa, fb);
            assert_eq!(b.bytes_read(), b.file_size());
            assert_eq!(b.frames_read(), 2);
        }
    }

    #[test]
    fn gzip_pcapng_with_two_link_types() {
        let mut out = Vec::new();
        shb(&mut out);
        idb(&mut out, 1);
        epb(&mut out, 0, 5_000_000, &[7; 42], 42);
        idb(&mut out, 113);
        epb(&mut out, 1, 6_000_000, &[8; 40], 40);
        let f = write_temp(&gzip(&out));
        let mut cf = CaptureFile::open(f.path()).unwrap();
        assert!(cf.is_compressed() && cf.is_pcapng());
        let mut frames = Vec::new();
        while let Ok(Some(fr)) = cf.next_frame() {
            frames.push((fr.ts, fr.link, fr.data.to_vec()));
        }
        assert_eq!(
            frames,
            vec![
                (Timestamp(5_000_000_000), LinkType::Ethernet, vec![7; 42]),
                (Timestamp(6_000_000_000), LinkType::LinuxSll, vec![8; 40]),
            ]
        );
    }

    #[test]
    fn gzip_of_something_else_is_not_a_capture() {
        let f = write_temp(&gzip(b"<?xml version=\"1.0\"?>"));
        match CaptureFile::open(f.path()) {
            Err(OpenError::NotACapture { detail, .. }) => {
                assert_eq!(
                    detail,
                    "gzip-compressed content: starts with bytes 3c 3f 78 6d"
                )
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("opened gzip'd XML"),
        }
    }

    #[test]
    fn cut_gzip_warns_after_the_good_frames() {
        let mut p = Pcap::new(MICRO, false, 1);
        for i in 0..200u32 {
            // Incompressible-ish bytes so the cut lands inside the records.
            let data: Vec<u8> = (0..300u32)
                .map(|j| (i * 7919 + j * 104_729) as u8)
                .collect();
            p.record(10 + i, 0, &data, 300);
        }
        let packed = gzip(&p.bytes);
        let f = write_temp(&packed[..packed.len() / 2]);
        let mut cf = CaptureFile::open(f.path()).unwrap();
        let (frames, warning) = read_all(&mut cf);
        assert!(!frames.is_empty() && frames.len() < 200, "{}", frames.len());
        let w = warning.expect("a warning");
        assert!(
            matches!(w, ReadWarning::PureStopped { frames: n, .. } if n == frames.len() as u64),
            "{w:?}"
        );
    }

    #[test]
    fn pcapng_time_resolutions() {
        assert_eq!(units_to_nanos(5, 6), 5_000);
        assert_eq!(units_to_nanos(5, 9), 5);
        assert_eq!(units_to_nanos(5_000, 12), 5);
        assert_eq!(units_to_nanos(1 << 20, 0x80 | 20), 1_000_000_000);
    }
}
