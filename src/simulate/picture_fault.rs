//! `simulate --picture-fault cut|corrupt`: send the first picture of each multipart event broken,
//! as devices in the field do (a plate picture cut short when the device's buffer ran out, a
//! picture with overwritten bytes), so that the picture checks (`isapi::picture`) can be shown on
//! a real push and recorded into samples.
//!
//! The body stays well framed: the part keeps its headers (and the Content-Length of the whole
//! picture, which is what makes a cut visible to the server), only its content changes.

use super::events::Push;

/// How to break the first picture of a multipart body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PictureFault {
    /// Send only the first 5/8 of the picture (no end marker); its Content-Length still says the
    /// whole size.
    Cut,
    /// Overwrite 32 bytes from the frame header (SOF) on: the picture no longer decodes.
    Corrupt,
}

/// Bytes of junk written over the frame header by [`PictureFault::Corrupt`].
const JUNK: [u8; 32] = [0x5A; 32];

impl PictureFault {
    /// The push with its first picture broken; a body without a JPEG part is sent as it is.
    pub fn apply(self, mut push: Push) -> Push {
        let Some((start, end)) = first_jpeg(&push.body) else {
            return push;
        };
        match self {
            PictureFault::Cut => {
                let keep = (end - start) * 5 / 8;
                push.body.drain(start + keep..end);
                push.picture_bytes = push.picture_bytes.saturating_sub(end - start - keep);
            }
            PictureFault::Corrupt => {
                let pic = push.body.get(start..end).unwrap_or_default();
                let sof = pic
                    .windows(2)
                    .position(|w| w == [0xFF, 0xC0])
                    .map_or(start, |p| start + p);
                let to = (sof + JUNK.len()).min(end);
                if let Some(dst) = push.body.get_mut(sof..to) {
                    let n = dst.len();
                    dst.copy_from_slice(JUNK.get(..n).unwrap_or_default());
                }
            }
        }
        push
    }
}

/// Content range of the first part whose content starts as a JPEG (`FF D8`), up to the CRLF
/// before the next boundary line.
fn first_jpeg(body: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    loop {
        let head_end = find(body.get(from..)?, b"\r\n\r\n")? + from + 4;
        let rest = body.get(head_end..)?;
        if rest.starts_with(&[0xFF, 0xD8]) {
            let end = find(rest, b"\r\n--")? + head_end;
            return Some((head_end, end));
        }
        from = head_end;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isapi::picture::{CorruptReason, PictureProblem};
    use crate::isapi::{BodyDecoder, BodyLimits};
    use crate::simulate::events::{build_push, BodyFormat, DeviceIdentity, EventKind, EventSpec};
    use crate::time::Timestamp;

    fn anpr() -> Push {
        let id = DeviceIdentity::new(0, "127.0.0.1".parse().unwrap());
        let spec = EventSpec {
            kind: EventKind::Anpr,
            format: BodyFormat::Xml,
            seq: 0,
            active_post_count: 1,
            quirks: false,
            channel: None,
        };
        build_push(&id, &spec, Timestamp(1_700_000_000_000_000_000))
    }

    fn decode(p: &Push) -> crate::isapi::DecodedBody {
        let mut d = BodyDecoder::new(Some(&p.content_type), BodyLimits::default());
        d.feed(&p.body, None);
        d.finish(None)
    }

    #[test]
    fn an_intact_push_has_whole_pictures() {
        let d = decode(&anpr());
        let pics: Vec<_> = d.parts.iter().filter_map(|p| p.picture.as_ref()).collect();
        assert_eq!(pics.len(), 2);
        assert!(pics
            .iter()
            .all(|p| p.problem.is_none() && p.width.is_some()));
    }

    #[test]
    fn cut_leaves_the_declared_length_and_five_eighths() {
        let whole = anpr();
        let d0 = decode(&whole);
        let full = d0.parts.get(1).map(|p| p.bytes).unwrap();
        let d = decode(&PictureFault::Cut.apply(whole));
        assert_eq!(d.error, None);
        let pic = d.parts.get(1).and_then(|p| p.picture.clone()).unwrap();
        assert_eq!(
            pic.problem,
            Some(PictureProblem::Cut {
                bytes: full * 5 / 8,
                declared: Some(full)
            })
        );
        // The other picture is untouched.
        assert_eq!(
            d.parts
                .get(2)
                .and_then(|p| p.picture.clone())
                .unwrap()
                .problem,
            None
        );
    }

    #[test]
    fn corrupt_breaks_the_frame_header() {
        let d = decode(&PictureFault::Corrupt.apply(anpr()));
        let pic = d.parts.get(1).and_then(|p| p.picture.clone()).unwrap();
        assert!(
            matches!(
                pic.problem,
                Some(PictureProblem::Corrupt {
                    reason: CorruptReason::ExpectedMarker { found: 0x5A },
                    ..
                })
            ),
            "{:?}",
            pic.problem
        );
    }

    #[test]
    fn bodies_without_pictures_pass_unchanged() {
        let id = DeviceIdentity::new(0, "127.0.0.1".parse().unwrap());
        let spec = EventSpec {
            kind: EventKind::Vmd,
            format: BodyFormat::Xml,
            seq: 0,
            active_post_count: 1,
            quirks: false,
            channel: None,
        };
        let p = build_push(&id, &spec, Timestamp(0));
        let body = p.body.clone();
        assert_eq!(PictureFault::Cut.apply(p).body, body);
    }
}
