//! Pictures checked as an engineer would check them: a JPEG part must start with SOI (`FF D8`),
//! end with EOI (`FF D9`), and its header must decode; its size in pixels is shown. A cut or
//! corrupt picture becomes a typed finding on the exchange.
//!
//! Sans-IO and streaming, like the body decoder that drives it: [`JpegCheck`] is fed the part's
//! bytes as they pass and keeps only the segments a decoder needs to read the header (tables,
//! frame and scan headers: a few hundred bytes, at most [`MAX_HEADER`]); APPn and comment
//! segments and the entropy-coded data are walked, never kept. The kept header is handed to
//! `zune-jpeg` (a maintained, fuzzed decoder) for the real verdict on the header and the
//! dimensions. The scan data is checked for what a cut or overwritten stream shows: bytes after
//! `FF` that are no marker. A full pixel decode is not done: at ~1-2 ms per camera picture it
//! would cost a replay more than everything else together, and a cut or a broken header is what
//! devices actually send.
//!
//! Bytes lost to a capture gap make the picture uncheckable: it is then
//! [`PictureProblem::NotCaptured`], never "cut" or "corrupt".

use serde::Serialize;

/// Most header bytes (SOI, DQT, DHT, SOF, DRI, SOS, APP14) kept for the decoder. Real headers are
/// under 1 KiB; a longer one is a finding, not a reason to hold more memory.
pub const MAX_HEADER: usize = 64 * 1024;

/// What is wrong with a picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PictureProblem {
    /// The part does not start with a JPEG's SOI marker.
    NotJpeg {
        /// Its first bytes, in hex.
        start: String,
    },
    /// The JPEG ends before its EOI marker: the device sent only part of it.
    Cut {
        /// Bytes it has.
        bytes: u64,
        /// Bytes its part's Content-Length promised, when it had one.
        declared: Option<u64>,
    },
    /// The JPEG's structure is broken.
    Corrupt {
        /// Offset in the picture where it goes wrong.
        offset: u64,
        reason: CorruptReason,
    },
    /// Bytes of the picture are missing from the capture: it cannot be checked (uncertain).
    NotCaptured { missing: u64 },
}

/// Why a JPEG is corrupt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum CorruptReason {
    /// `FF` followed by a byte that is no marker.
    BadMarker { code: u8 },
    /// A marker (`FF`) was due between segments, another byte came.
    ExpectedMarker { found: u8 },
    /// The decoder refused the header (its message).
    Header { error: String },
    /// EOI came before any scan: there is no image.
    NoScan,
    /// Header segments longer than [`MAX_HEADER`].
    HeaderTooLarge,
}

impl std::fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorruptReason::BadMarker { code } => write!(f, "FF {code:02X} is no JPEG marker"),
            CorruptReason::ExpectedMarker { found } => {
                write!(f, "a marker was due, found byte {found:02X}")
            }
            CorruptReason::Header { error } => write!(f, "the header does not decode: {error}"),
            CorruptReason::NoScan => f.write_str("it ends before any image data"),
            CorruptReason::HeaderTooLarge => {
                write!(f, "its header is over {} bytes", MAX_HEADER)
            }
        }
    }
}

impl std::fmt::Display for PictureProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PictureProblem::NotJpeg { start } => {
                write!(f, "is not a JPEG: it starts with {start}, not FF D8")
            }
            PictureProblem::Cut {
                bytes,
                declared: Some(d),
            } if d > bytes => write!(
                f,
                "is cut after {} of {} bytes (no end marker FF D9)",
                grouped(*bytes),
                grouped(*d)
            ),
            PictureProblem::Cut { bytes, .. } => write!(
                f,
                "is cut after {} bytes (no end marker FF D9)",
                grouped(*bytes)
            ),
            PictureProblem::Corrupt { offset, reason } => {
                write!(f, "is corrupt at byte {}: {reason}", grouped(*offset))
            }
            PictureProblem::NotCaptured { missing } => write!(
                f,
                "cannot be checked: {} of its bytes are missing from the capture",
                grouped(*missing)
            ),
        }
    }
}

impl PictureProblem {
    /// True when the capture, not the device, is the cause (nothing can be said of the picture).
    pub fn is_uncertain(&self) -> bool {
        matches!(self, PictureProblem::NotCaptured { .. })
    }
}

/// `61440` -> "61 440", as an engineer reads byte counts.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The result of checking one picture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PictureCheck {
    /// Size in pixels, from the decoded header.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// What is wrong, if anything (`null`: a whole JPEG whose header decodes).
    pub problem: Option<PictureProblem>,
    /// Bytes after the EOI marker (some devices pad; harmless to viewers). Absent when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub trailing_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl std::fmt::Display for PictureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.problem, self.width, self.height) {
            (Some(p), _, _) => write!(f, "picture {p}"),
            (None, Some(w), Some(h)) => write!(f, "JPEG {w}x{h}"),
            (None, _, _) => f.write_str("JPEG"),
        }
    }
}

/// Is this part a JPEG picture (by its Content-Type or file name)?
pub fn is_jpeg_part(
    content_type: Option<&str>,
    filename: Option<&str>,
    name: Option<&str>,
) -> bool {
    let ct = content_type.unwrap_or_default().to_ascii_lowercase();
    if ct.contains("jpeg") || ct.contains("jpg") {
        return true;
    }
    if !ct.is_empty() && ct != "application/octet-stream" {
        return false;
    }
    [filename, name].iter().flatten().any(|n| {
        let n = n.to_ascii_lowercase();
        n.ends_with(".jpg") || n.ends_with(".jpeg")
    })
}

/// Where in the JPEG structure the checker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Expecting SOI's first byte (`FF`), then its second (`D8`).
    Soi0,
    Soi1,
    /// Between segments: `FF` must come.
    Marker,
    /// After `FF`: the marker code.
    Code,
    /// A segment's two length bytes.
    Len0 {
        code: u8,
    },
    Len1 {
        code: u8,
        hi: u8,
    },
    /// Inside a segment's content.
    Segment {
        code: u8,
        left: u16,
        keep: bool,
    },
    /// Entropy-coded data after SOS (`ff`: the previous byte was `FF`).
    Scan {
        ff: bool,
    },
    /// After EOI.
    AfterEoi,
    /// A problem was found: the rest is only counted.
    Stopped,
}

/// Streaming check of one JPEG (see the module doc).
#[derive(Debug)]
pub struct JpegCheck {
    st: St,
    pos: u64,
    header: Vec<u8>,
    scans: u32,
    start: [u8; 2],
    missing: u64,
    trailing: u64,
    eoi: bool,
    dims: Option<(u32, u32)>,
    problem: Option<PictureProblem>,
}

impl Default for JpegCheck {
    fn default() -> Self {
        JpegCheck::new()
    }
}

impl JpegCheck {
    pub fn new() -> JpegCheck {
        JpegCheck {
            st: St::Soi0,
            pos: 0,
            header: Vec::new(),
            scans: 0,
            start: [0; 2],
            missing: 0,
            trailing: 0,
            eoi: false,
            dims: None,
            problem: None,
        }
    }

    /// Feed the next bytes of the picture. Runs of bytes that need no look (entropy-coded data
    /// up to the next `FF`, skipped segments, bytes after EOI) are passed in one step: the check
    /// must cost next to nothing beside the multipart decoder, which passes pictures on without
    /// copying them.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let skip = match self.st {
                St::Scan { ff: false } => memchr::memchr(0xFF, data).unwrap_or(data.len()),
                // Leave the segment's last byte to `byte`, which ends the segment.
                St::Segment {
                    left, keep: false, ..
                } => usize::from(left).saturating_sub(1).min(data.len()),
                St::AfterEoi => {
                    self.trailing += data.len() as u64;
                    data.len()
                }
                St::Stopped => data.len(),
                _ => 0,
            };
            if skip > 0 {
                if let St::Segment { code, left, keep } = self.st {
                    let n = u16::try_from(skip).unwrap_or(u16::MAX);
                    self.st = St::Segment {
                        code,
                        left: left.saturating_sub(n),
                        keep,
                    };
                }
                self.pos += skip as u64;
                data = data.get(skip..).unwrap_or_default();
                continue;
            }
            if let Some((&b, rest)) = data.split_first() {
                self.byte(b);
                self.pos += 1;
                data = rest;
            }
        }
    }

    /// `n` bytes of the picture are missing from the capture.
    pub fn gap(&mut self, n: u64) {
        self.missing = self.missing.saturating_add(n);
        self.pos = self.pos.saturating_add(n);
        self.st = St::Stopped;
    }

    fn corrupt(&mut self, reason: CorruptReason) {
        self.problem = Some(PictureProblem::Corrupt {
            offset: self.pos,
            reason,
        });
        self.st = St::Stopped;
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.header.len() + bytes.len() > MAX_HEADER {
            self.corrupt(CorruptReason::HeaderTooLarge);
            return;
        }
        self.header.extend_from_slice(bytes);
    }

    fn byte(&mut self, b: u8) {
        match self.st {
            St::Soi0 | St::Soi1 => {
                let i = usize::from(self.st == St::Soi1);
                if let Some(s) = self.start.get_mut(i) {
                    *s = b;
                }
                let want = if i == 0 { 0xFF } else { 0xD8 };
                if b != want {
                    self.problem = Some(PictureProblem::NotJpeg {
                        start: self.start_hex(i + 1),
                    });
                    self.st = St::Stopped;
                } else if i == 0 {
                    self.st = St::Soi1;
                } else {
                    self.header.extend_from_slice(&[0xFF, 0xD8]);
                    self.st = St::Marker;
                }
            }
            St::Marker => {
                if b == 0xFF {
                    self.st = St::Code;
                } else {
                    self.corrupt(CorruptReason::ExpectedMarker { found: b });
                }
            }
            St::Code => self.marker(b, false),
            St::Len0 { code } => self.st = St::Len1 { code, hi: b },
            St::Len1 { code, hi } => {
                let len = u16::from_be_bytes([hi, b]);
                if len < 2 {
                    self.corrupt(CorruptReason::Header {
                        error: format!("segment FF {code:02X} has length {len}"),
                    });
                    return;
                }
                let keep = matches!(code, 0xC0..=0xCF | 0xDA | 0xDB | 0xDD | 0xEE);
                if keep {
                    self.keep(&[0xFF, code, hi, b]);
                }
                self.st = St::Segment {
                    code,
                    left: len - 2,
                    keep,
                };
                if len == 2 {
                    self.segment_done(code);
                }
            }
            St::Segment { code, left, keep } => {
                if keep {
                    self.keep(&[b]);
                    if self.st == St::Stopped {
                        return;
                    }
                }
                let left = left.saturating_sub(1);
                self.st = St::Segment { code, left, keep };
                if left == 0 {
                    self.segment_done(code);
                }
            }
            St::Scan { ff: false } => {
                if b == 0xFF {
                    self.st = St::Scan { ff: true };
                }
            }
            St::Scan { ff: true } => match b {
                0x00 | 0xD0..=0xD7 => self.st = St::Scan { ff: false },
                0xFF => {}
                _ => self.marker(b, true),
            },
            St::AfterEoi => self.trailing += 1,
            St::Stopped => {}
        }
    }

    /// A marker code `b` after `FF` (`in_scan`: it ends entropy-coded data).
    fn marker(&mut self, b: u8, in_scan: bool) {
        match b {
            0xFF => self.st = St::Code, // fill byte
            0xD9 => {
                if self.scans == 0 {
                    self.corrupt(CorruptReason::NoScan);
                } else {
                    self.eoi = true;
                    self.st = St::AfterEoi;
                }
            }
            0x01 | 0xD0..=0xD7 => {
                self.st = if in_scan {
                    St::Scan { ff: false }
                } else {
                    St::Marker
                }
            }
            0xC0..=0xFE if b != 0xD8 => self.st = St::Len0 { code: b },
            _ => self.corrupt(CorruptReason::BadMarker { code: b }),
        }
    }

    fn segment_done(&mut self, code: u8) {
        if code != 0xDA {
            self.st = St::Marker;
            return;
        }
        self.scans += 1;
        if self.scans == 1 {
            self.decode_header();
            if self.st == St::Stopped {
                return;
            }
            // Only the first scan's header is decoded; later tables are not kept.
            self.header = Vec::new();
        }
        self.st = St::Scan { ff: false };
    }

    /// Hand SOI + tables + frame + scan header to the decoder: its verdict and the dimensions.
    fn decode_header(&mut self) {
        let mut hdr = std::mem::take(&mut self.header);
        hdr.extend_from_slice(&[0xFF, 0xD9]);
        let mut d = zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(
            hdr.as_slice(),
        ));
        match d.decode_headers() {
            Ok(()) => match d.dimensions() {
                Some((w, h)) if w > 0 && h > 0 => {
                    self.dims = Some((
                        u32::try_from(w).unwrap_or(u32::MAX),
                        u32::try_from(h).unwrap_or(u32::MAX),
                    ))
                }
                _ => self.corrupt(CorruptReason::Header {
                    error: "no frame size".into(),
                }),
            },
            Err(e) => self.corrupt(CorruptReason::Header {
                error: e.to_string(),
            }),
        }
    }

    fn start_hex(&self, n: usize) -> String {
        self.start
            .iter()
            .take(n)
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The frame size from a kept SOF segment, for a picture cut before its scan (the decoder
    /// wants the scan header too). Read by hand: four bytes at a fixed place of a segment the
    /// walk already found.
    fn sof_size(&self) -> Option<(u32, u32)> {
        let h = &self.header;
        let at = h.windows(2).position(|w| {
            w[0] == 0xFF && matches!(w[1], 0xC0..=0xCF) && !matches!(w[1], 0xC4 | 0xC8 | 0xCC)
        })?;
        let b = h.get(at + 5..at + 9)?;
        let (hgt, wid) = (
            u16::from_be_bytes([b[0], b[1]]),
            u16::from_be_bytes([b[2], b[3]]),
        );
        (hgt > 0 && wid > 0).then_some((u32::from(wid), u32::from(hgt)))
    }

    /// The part is over: `declared` is its Content-Length, if it had one.
    pub fn finish(self, declared: Option<u64>) -> PictureCheck {
        let dims = self.dims.or_else(|| {
            (self.scans == 0 && self.problem.is_none())
                .then(|| self.sof_size())
                .flatten()
        });
        let problem = if self.missing > 0 {
            Some(PictureProblem::NotCaptured {
                missing: self.missing,
            })
        } else if let Some(p) = self.problem {
            Some(p)
        } else if self.pos < 2 {
            Some(PictureProblem::NotJpeg {
                start: if self.pos == 0 {
                    "nothing".into()
                } else {
                    self.start_hex(1)
                },
            })
        } else if !self.eoi {
            Some(PictureProblem::Cut {
                bytes: self.pos,
                declared,
            })
        } else {
            None
        };
        PictureCheck {
            width: dims.map(|d| d.0),
            height: dims.map(|d| d.1),
            problem,
            trailing_bytes: self.trailing,
        }
    }
}

/// Check a whole picture at once (tests, and callers that hold the bytes anyway).
pub fn check(data: &[u8], declared: Option<u64>) -> PictureCheck {
    let mut c = JpegCheck::new();
    c.feed(data);
    c.finish(declared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::events::jpeg;

    #[test]
    fn a_whole_jpeg_gives_its_size() {
        let j = jpeg(2688, 1520, 200_000);
        let c = check(&j, Some(j.len() as u64));
        assert_eq!(c.problem, None);
        assert_eq!((c.width, c.height), (Some(2688), Some(1520)));
        // Fed a byte at a time, the same.
        let mut s = JpegCheck::new();
        for b in &j {
            s.feed(std::slice::from_ref(b));
        }
        assert_eq!(s.finish(None), c);
    }

    #[test]
    fn a_cut_jpeg_says_where() {
        let j = jpeg(320, 80, 98_113);
        let c = check(&j[..61_440], Some(j.len() as u64));
        // Cut before its scan: the size is still read from the frame header.
        assert_eq!((c.width, c.height), (Some(320), Some(80)));
        assert_eq!(
            c.problem,
            Some(PictureProblem::Cut {
                bytes: 61_440,
                declared: Some(j.len() as u64)
            })
        );
        let text = c.problem.map(|p| p.to_string()).unwrap_or_default();
        assert!(text.starts_with("is cut after 61 440 of "), "{text}");
    }

    #[test]
    fn not_a_jpeg_and_empty() {
        let c = check(b"<?xml", None);
        assert!(matches!(c.problem, Some(PictureProblem::NotJpeg { ref start }) if start == "3C"));
        assert!(matches!(
            check(b"", None).problem,
            Some(PictureProblem::NotJpeg { .. })
        ));
    }

    #[test]
    fn a_broken_header_is_corrupt() {
        let mut j = jpeg(320, 80, 5_000);
        // Zero the frame's component count (SOF0 at a fixed place after APP0 and DQT).
        let sof = j.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        j[sof + 9] = 0;
        let c = check(&j, None);
        assert!(
            matches!(
                c.problem,
                Some(PictureProblem::Corrupt {
                    reason: CorruptReason::Header { .. },
                    ..
                })
            ),
            "{:?}",
            c.problem
        );
    }

    #[test]
    fn a_stray_byte_after_ff_in_the_scan_is_corrupt() {
        let mut j = jpeg(64, 64, 2_000);
        let eoi = j.len() - 2;
        j.splice(eoi..eoi, [0xFF, 0x12]);
        let c = check(&j, None);
        assert!(matches!(
            c.problem,
            Some(PictureProblem::Corrupt {
                reason: CorruptReason::BadMarker { code: 0x12 },
                ..
            })
        ));
    }

    #[test]
    fn lost_bytes_are_uncertain_and_padding_is_counted() {
        let j = jpeg(64, 64, 2_000);
        let mut c = JpegCheck::new();
        c.feed(&j[..100]);
        c.gap(50);
        let r = c.finish(None);
        assert!(r.problem.as_ref().is_some_and(PictureProblem::is_uncertain));
        let mut padded = j.clone();
        padded.extend_from_slice(&[0; 7]);
        let r = check(&padded, None);
        assert_eq!(r.problem, None);
        assert_eq!(r.trailing_bytes, 7);
    }

    #[test]
    fn any_split_gives_the_same_check() {
        let whole = jpeg(640, 480, 30_000);
        let mut stray = whole.clone();
        let eoi = stray.len() - 2;
        stray.splice(eoi - 10..eoi - 10, [0xFF, 0x07]);
        let mut padded = whole.clone();
        padded.extend_from_slice(b"xyz");
        let variants = [
            whole.clone(),
            whole[..whole.len() / 2].to_vec(),
            whole[..whole.len() - 1].to_vec(),
            stray,
            padded,
        ];
        for v in &variants {
            let want = check(v, Some(whole.len() as u64));
            for chunk in [1usize, 2, 3, 7, 64, 1000, 4096] {
                let mut c = JpegCheck::new();
                v.chunks(chunk).for_each(|p| c.feed(p));
                assert_eq!(c.finish(Some(whole.len() as u64)), want, "chunk {chunk}");
            }
        }
        // And the variants are what they are, so the comparison means something.
        let kinds: Vec<_> = variants
            .iter()
            .map(|v| check(v, None).problem.map(|p| std::mem::discriminant(&p)))
            .collect();
        assert!(kinds[0].is_none() && kinds[4].is_none());
        assert!(kinds[1].is_some() && kinds[2].is_some() && kinds[3].is_some());
    }

    #[test]
    fn jpeg_parts_by_type_or_name() {
        assert!(is_jpeg_part(Some("image/jpeg"), None, None));
        assert!(is_jpeg_part(Some("image/pjpeg"), None, None));
        assert!(is_jpeg_part(None, Some("a.JPG"), None));
        assert!(is_jpeg_part(
            Some("application/octet-stream"),
            None,
            Some("x.jpeg")
        ));
        assert!(!is_jpeg_part(Some("text/xml"), Some("a.jpg"), None));
        assert!(!is_jpeg_part(None, None, Some("anpr.xml")));
    }

    #[test]
    fn byte_counts_are_grouped() {
        assert_eq!(grouped(61_440), "61 440");
        assert_eq!(grouped(98_113), "98 113");
        assert_eq!(grouped(1_000_000), "1 000 000");
        assert_eq!(grouped(999), "999");
    }
}
