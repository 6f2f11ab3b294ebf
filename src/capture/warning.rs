//! The located problems with the input that a capture's analysis reports beside its findings: a
//! frame that could not be decoded, IP fragments given up, a capture file that stops part-way, and
//! the count of those not kept. One closed enum so that callers (the CLI's stderr notes, the TUI,
//! tests) match on kinds; the text is `Display`, and the JSON carries exactly that text, one
//! string per warning (docs/json-schema.md).

use serde::{Serialize, Serializer};

use super::defrag::DefragWarning;
use super::file::ReadWarning;
use super::frame::FrameError;

/// One located problem with the input, bounded in number by the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// Frame `frame` (1-based) could not be decoded; it counts as undecodable and the rest of the
    /// capture is analysed.
    #[error("frame {frame}: {error}")]
    Frame { frame: u64, error: FrameError },
    /// A fragment set given up (timed out) when frame `frame` came: its packet was not analysed.
    #[error("frame {frame}: {dropped}")]
    Fragments { frame: u64, dropped: DefragWarning },
    /// A fragment set given up at the end of the capture (its kind says why).
    #[error("{0}")]
    FragmentsAtEnd(DefragWarning),
    /// The capture file stopped part-way, or its reader changed (frames before were analysed).
    #[error("capture file: {0}")]
    CaptureFile(ReadWarning),
    /// The bound was reached: this many more warnings were counted but not kept. Always last.
    #[error("{count} more warnings not shown")]
    NotShown { count: u64 },
}

impl Warning {
    /// The capture file ends inside a record: worth a line on stderr beside the report.
    pub fn file_cut(&self) -> bool {
        matches!(self, Warning::CaptureFile(w) if w.file_cut())
    }
}

/// The JSON keeps the text of each warning (the schema says a string per warning).
impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::capture::defrag::{DropKind, FragKey};
    use crate::capture::FrameLayer;

    fn dropped(kind: DropKind) -> DefragWarning {
        DefragWarning {
            kind,
            key: FragKey {
                src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                id: 0x1234,
                proto: 6,
            },
            fragments: 2,
            bytes: 1480,
        }
    }

    /// The JSON text of every kind is the wording reports carried before the warnings were typed
    /// (docs/json-schema.md: "frame 17: ipv4: ...", the last one counting those not shown).
    #[test]
    fn each_kind_serialises_as_its_documented_text() {
        let cases = [
            (
                Warning::Frame {
                    frame: 17,
                    error: FrameError {
                        layer: FrameLayer::Ipv4,
                        problem: crate::capture::frame::FrameProblem::Cut {
                            what: "header".into(),
                            len: 12,
                            required: 20,
                        },
                        inside: None,
                    },
                },
                "frame 17: ipv4: header cut short (12 of 20 bytes)",
            ),
            (
                Warning::Fragments {
                    frame: 9,
                    dropped: dropped(DropKind::TimedOut),
                },
                "frame 9: IP fragments of 10.0.0.1 -> 10.0.0.2 (id 0x1234, protocol 6): 2 \
                 fragment(s), 1480 bytes held without the rest until the timeout; the packet was \
                 not analysed",
            ),
            (
                Warning::FragmentsAtEnd(dropped(DropKind::Unfinished)),
                "IP fragments of 10.0.0.1 -> 10.0.0.2 (id 0x1234, protocol 6): 2 fragment(s), \
                 1480 bytes held without the rest at the end of the capture; the packet was not \
                 analysed",
            ),
            (
                Warning::CaptureFile(ReadWarning::Stopped {
                    frames: 1,
                    message: "truncated dump file".into(),
                    cut: true,
                }),
                "capture file: stopped after 1 frame: truncated dump file",
            ),
            (
                Warning::CaptureFile(ReadWarning::PureStopped {
                    frames: 1,
                    error: crate::capture::file::PureReadError::UnknownInterface(3),
                }),
                "capture file: stopped after 1 frames: packet for unknown interface 3",
            ),
            (Warning::NotShown { count: 4 }, "4 more warnings not shown"),
        ];
        for (w, text) in cases {
            assert_eq!(w.to_string(), text);
            assert_eq!(
                serde_json::to_value(&w).ok(),
                Some(serde_json::Value::String(text.to_string()))
            );
        }
    }

    /// Only a file that ends inside a record is "cut": a reader hand-over or a frame error is not.
    #[test]
    fn only_a_cut_file_is_file_cut() {
        let stopped = |cut| {
            Warning::CaptureFile(ReadWarning::Stopped {
                frames: 3,
                message: "x".into(),
                cut,
            })
        };
        assert!(stopped(true).file_cut());
        assert!(!stopped(false).file_cut());
        let read_on = Warning::CaptureFile(ReadWarning::ReadOn {
            frames: 3,
            message: "truncated".into(),
        });
        assert!(!read_on.file_cut());
        assert!(!Warning::NotShown { count: 1 }.file_cut());
    }
}
