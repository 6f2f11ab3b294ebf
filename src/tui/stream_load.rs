//! The IO shell of the Follow-stream view: builds a connection's [`StreamIndex`] by reading the
//! capture file once more (on a background thread; the TUI stays responsive), and later reads
//! single frames back for the visible window ([`PayloadSource`]).
//!
//! Why a re-read rather than bytes kept by the first pass: the analysis keeps no packet bytes
//! (memory must not grow with the capture), and which connection is followed is only known when
//! the engineer asks. Frames of the connection are chosen as the pcap export chooses them
//! ([`crate::export::Selection`]: addresses and time range).
//!
//! Reading a frame back: an uncompressed classic pcap is read by seeking to the frame's record
//! (a few hundred bytes per visible line at most); pcapng and gzip files have no offsets libpcap
//! reports, so their frames are found again by number, reading forward from the last frame read
//! (from the start when scrolling back). Those are slower on big files, never wrong.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::capture::file::CaptureFile;
use crate::capture::frame::{decode_frame_counted, Decoded, FrameDecoder, LinkType};
use crate::capture::EncapCounts;
use crate::export::Selection;
use crate::stream_index::{FramePos, StreamIndex, StreamIndexer};
use crate::tls::SharedKeys;

/// The connection to follow, as the view asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget {
    /// The connection's id in the analysis.
    pub conn_id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The connection carries TLS: label records.
    pub tls: bool,
    /// Its frames: addresses and time range.
    pub selection: Selection,
    /// The replay's key log (`--keylog`): a TLS connection's records that decrypt are shown as
    /// their plaintext.
    pub keys: Option<SharedKeys>,
}

/// Why the stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The capture cannot be opened again.
    #[error("{0}")]
    Open(String),
    /// Reading failed.
    #[error("reading the capture: {0}")]
    Io(String),
    /// The frame read back is not the one indexed (the file changed since).
    #[error("frame {ordinal} is not what it was when indexed: has the file changed?")]
    Changed { ordinal: u64 },
    /// The file ends before the frame.
    #[error("frame {ordinal} is no longer in the file")]
    Missing { ordinal: u64 },
}

/// Reads the TCP payload of an indexed frame back. Injected into the view, so tests can give
/// bytes from memory.
pub trait PayloadSource: Send {
    /// The whole captured TCP payload of the frame at `pos`.
    fn payload(&mut self, pos: &FramePos) -> Result<Vec<u8>, LoadError>;
}

/// An index and the reader of its frames, as the background thread hands them to the view.
pub struct StreamReady {
    /// The connection indexed.
    pub conn_id: u64,
    pub index: StreamIndex,
    pub source: Box<dyn PayloadSource>,
}

impl std::fmt::Debug for StreamReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReady")
            .field("conn_id", &self.conn_id)
            .field("entries", &self.index.entries.len())
            .finish()
    }
}

/// Read `path` again and index the target connection's stream.
pub fn build(path: &Path, target: &StreamTarget) -> Result<StreamReady, LoadError> {
    let mut cf = CaptureFile::open(path).map_err(|e| LoadError::Open(e.to_string()))?;
    // libpcap's running byte count is each record's offset exactly for uncompressed classic
    // pcap (see CaptureFile::bytes_read).
    let seekable = !cf.is_pcapng() && !cf.is_compressed();
    let mut sel = target.selection.clone();
    let mut ix = StreamIndexer::new(target.client, target.server, target.tls);
    if let Some(keys) = &target.keys {
        ix = ix.with_keys(keys.clone());
    }
    let mut encaps = EncapCounts::default();
    // Stateful, as in the analysis: a segment in IP fragments comes out of its last fragment.
    let mut decoder = FrameDecoder::default();
    let mut ordinal = 0u64;
    loop {
        let offset = seekable.then(|| cf.bytes_read());
        let frame = match cf.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            // Reported by the analysis pass already; frames after it are read on.
            Err(_) => continue,
        };
        let n = ordinal;
        ordinal += 1;
        let frame_range = frame.data.as_ptr_range();
        let caplen = u32::try_from(frame.data.len()).unwrap_or(u32::MAX);
        let Ok(Decoded::Tcp(seg)) = decoder.decode(
            frame.ts,
            frame.link,
            frame.data,
            frame.orig_len,
            &mut encaps,
        ) else {
            continue;
        };
        let syn = seg.flags.syn() && !seg.flags.ack();
        if !sel.wants(seg.src, seg.dst, frame.ts, syn) {
            continue;
        }
        let pos = FramePos {
            ordinal: n,
            offset,
            caplen,
            inline: None,
        };
        // A payload outside the frame's own bytes was put together from fragments.
        let reassembled = !seg.payload.is_empty() && !frame_range.contains(&seg.payload.as_ptr());
        if reassembled {
            ix.reassembled_segment(pos, frame.ts, &seg);
        } else {
            ix.segment(pos, frame.ts, &seg);
        }
    }
    let source: Box<dyn PayloadSource> = if seekable {
        Box::new(SeekSource::open(path, cf.link_type())?)
    } else {
        Box::new(SequentialSource {
            path: path.to_path_buf(),
            cf: None,
            next: 0,
        })
    };
    Ok(StreamReady {
        conn_id: target.conn_id,
        index: ix.finish(),
        source,
    })
}

/// The TCP payload of a frame's bytes, checked against what was indexed.
fn tcp_payload(
    link: LinkType,
    data: &[u8],
    orig_len: u32,
    pos: &FramePos,
) -> Result<Vec<u8>, LoadError> {
    if data.len() as u64 != u64::from(pos.caplen) {
        return Err(LoadError::Changed {
            ordinal: pos.ordinal,
        });
    }
    match decode_frame_counted(link, data, orig_len, &mut EncapCounts::default()) {
        Ok(Decoded::Tcp(seg)) => Ok(seg.payload.to_vec()),
        _ => Err(LoadError::Changed {
            ordinal: pos.ordinal,
        }),
    }
}

/// Frames of an uncompressed classic pcap, read by seeking to their record.
struct SeekSource {
    file: File,
    link: LinkType,
    /// 16, or 24 for the "modified" (Kuznetzov) format.
    record_header: usize,
    little_endian: bool,
}

impl SeekSource {
    fn open(path: &Path, link: LinkType) -> Result<Self, LoadError> {
        let mut file = File::open(path).map_err(|e| LoadError::Open(e.to_string()))?;
        let mut magic = [0u8; 4];
        file.read_exact(&mut magic)
            .map_err(|e| LoadError::Io(e.to_string()))?;
        // The magic's four byte orders: microsecond, nanosecond, modified.
        let (little_endian, record_header) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => (true, 16),
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => (false, 16),
            [0x34, 0xcd, 0xb2, 0xa1] => (true, 24),
            [0xa1, 0xb2, 0xcd, 0x34] => (false, 24),
            _ => return Err(LoadError::Open("not a classic pcap any more".into())),
        };
        Ok(SeekSource {
            file,
            link,
            record_header,
            little_endian,
        })
    }
}

impl PayloadSource for SeekSource {
    fn payload(&mut self, pos: &FramePos) -> Result<Vec<u8>, LoadError> {
        let io = |e: std::io::Error| LoadError::Io(e.to_string());
        let Some(offset) = pos.offset else {
            return Err(LoadError::Missing {
                ordinal: pos.ordinal,
            });
        };
        self.file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut head = [0u8; 24];
        let head = head.get_mut(..self.record_header).unwrap_or(&mut []);
        self.file.read_exact(head).map_err(|_| LoadError::Missing {
            ordinal: pos.ordinal,
        })?;
        let word = |i: usize| {
            let b = [
                head.get(i).copied().unwrap_or(0),
                head.get(i + 1).copied().unwrap_or(0),
                head.get(i + 2).copied().unwrap_or(0),
                head.get(i + 3).copied().unwrap_or(0),
            ];
            if self.little_endian {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let (caplen, orig_len) = (word(8), word(12));
        if caplen != pos.caplen {
            return Err(LoadError::Changed {
                ordinal: pos.ordinal,
            });
        }
        let mut data = vec![0u8; caplen as usize];
        self.file
            .read_exact(&mut data)
            .map_err(|_| LoadError::Missing {
                ordinal: pos.ordinal,
            })?;
        tcp_payload(self.link, &data, orig_len, pos)
    }
}

/// Frames of a pcapng or gzip file, found again by number.
struct SequentialSource {
    path: PathBuf,
    cf: Option<CaptureFile>,
    /// Number of the next frame `cf` returns.
    next: u64,
}

impl PayloadSource for SequentialSource {
    fn payload(&mut self, pos: &FramePos) -> Result<Vec<u8>, LoadError> {
        if self.cf.is_none() || pos.ordinal < self.next {
            self.cf =
                Some(CaptureFile::open(&self.path).map_err(|e| LoadError::Open(e.to_string()))?);
            self.next = 0;
        }
        let Some(cf) = self.cf.as_mut() else {
            return Err(LoadError::Missing {
                ordinal: pos.ordinal,
            });
        };
        loop {
            let frame = match cf.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return Err(LoadError::Missing {
                        ordinal: pos.ordinal,
                    })
                }
                Err(_) => continue,
            };
            let n = self.next;
            self.next += 1;
            if n == pos.ordinal {
                return tcp_payload(frame.link, frame.data, frame.orig_len, pos);
            }
        }
    }
}
