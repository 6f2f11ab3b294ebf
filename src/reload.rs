//! Reload shell: analyse one connection of a capture file again, when it is opened.
//!
//! Why: the TUI keeps only a compact row per exchange (`tui::rows`), so that its memory does not
//! follow the capture; the whole connection (headers, body parts, event tree, packet time line)
//! is read again from the file, as Wireshark reads a packet's bytes again when it is selected.
//! The replay records a sparse [`Checkpoints`] index (a file offset every few thousand frames);
//! [`Reloader::load`] starts at the checkpoint before the connection's first packet, feeds only
//! that connection's frames (its two addresses) to a fresh [`Analyzer`] with the replay's
//! [`PipelineConfig`] (key log included) and takes the finished connection back.
//!
//! IO shell: it reads the file; the analysis is the same sans-IO pipeline as the replay's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::capture::file::CaptureFile;
use crate::capture::frame::{Decoded, FrameDecoder};
use crate::capture::EncapCounts;
use crate::model::Connection;
use crate::pipeline::{Analyzer, PipelineConfig};
use crate::time::Timestamp;

/// Frames between two checkpoints: ~90 bytes of index per few thousand frames; reading up to
/// that many frames to reach a connection takes a few milliseconds.
pub const CHECKPOINT_EVERY: u64 = 4096;

/// How long after a connection's last packet its frames are still looked for when the
/// connection did not finish on its own (capture timestamps slightly out of order).
const LATE_NANOS: i64 = 60_000_000_000;

/// Frames in a row later than that before the search stops (one frame with a wild timestamp
/// does not end it).
const LATE_FRAMES: u32 = 1024;

/// A place to start reading: the frame that comes after `frames_before` frames, at byte
/// `offset`, and the latest timestamp of the frames before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub frames_before: u64,
    /// The frame's record in the file (None: it cannot be seeked to, e.g. compressed).
    pub offset: Option<u64>,
    /// Latest frame time before this point (None: no frame before it).
    pub latest_before: Option<Timestamp>,
}

/// The sparse index a replay leaves behind: checkpoints in file order.
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    points: Vec<Checkpoint>,
}

/// Checkpoints shared between the replay thread (which records them) and the loader.
pub type SharedCheckpoints = Arc<Mutex<Checkpoints>>;

impl Checkpoints {
    /// Record a checkpoint (in file order).
    pub fn record(&mut self, c: Checkpoint) {
        self.points.push(c);
    }

    /// Checkpoints recorded.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when none was recorded.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The last checkpoint before which no frame is as late as `first_seen`: the connection's
    /// first packet (time `first_seen`) cannot lie before it, even when the capture's times are
    /// out of order. None: start at the beginning.
    pub fn before(&self, first_seen: Timestamp) -> Option<Checkpoint> {
        // `latest_before` only grows along the file: a binary search.
        let n = self
            .points
            .partition_point(|p| p.latest_before.is_none_or(|t| t < first_seen));
        n.checked_sub(1).and_then(|i| self.points.get(i)).copied()
    }
}

/// The connection to load, as the list row knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Its id in the replay (given to the loaded connection).
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Packets the replay counted for it.
    pub packets: u64,
}

/// Why a connection could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The row's addresses do not read as socket addresses.
    #[error("the connection's addresses cannot be read back")]
    NoAddresses,
    /// The capture cannot be opened again.
    #[error("{0}")]
    Open(String),
    /// No connection of these addresses and first packet came out of the frames read.
    #[error("connection {id} ({client} -> {server}) is not in the capture file any more: has it changed?")]
    NotFound {
        id: u64,
        client: SocketAddr,
        server: SocketAddr,
    },
}

/// Loads connections of one capture file again (see the module doc).
#[derive(Clone)]
pub struct Reloader {
    path: PathBuf,
    config: PipelineConfig,
    checkpoints: SharedCheckpoints,
}

impl Reloader {
    /// A loader of `path` analysed with `config` (the replay's), starting from the checkpoints
    /// the replay records into `checkpoints`.
    pub fn new(path: &Path, config: PipelineConfig, checkpoints: SharedCheckpoints) -> Self {
        Reloader {
            path: path.to_path_buf(),
            config,
            checkpoints,
        }
    }

    /// The capture file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Analyse the target connection again from the file.
    pub fn load(&self, t: &Target) -> Result<Connection, ReloadError> {
        let start = self
            .checkpoints
            .lock()
            .ok()
            .and_then(|c| c.before(t.first_seen));
        match self.load_from(t, start) {
            // A pcapng seek may skip an interface block the frames need: from the start then.
            Err((ReloadError::NotFound { .. }, true)) => {
                self.load_from(t, None).map_err(|(e, _)| e)
            }
            r => r.map_err(|(e, _)| e),
        }
    }

    /// [`Reloader::load`] from a checkpoint; the error says too whether a pcapng file was
    /// seeked.
    fn load_from(
        &self,
        t: &Target,
        start: Option<Checkpoint>,
    ) -> Result<Connection, (ReloadError, bool)> {
        let mut cf =
            CaptureFile::open(&self.path).map_err(|e| (ReloadError::Open(e.to_string()), false))?;
        let seeked_ng = cf.is_pcapng() && start.is_some_and(|c| c.offset.is_some());
        if let Some(cp) = start {
            cf.seek_to_frame(cp.frames_before, cp.offset);
        }
        let mut config = self.config.clone();
        // The detail pane reads the event at once (a replay's shell defers it to its own thread).
        config.body.defer_event = false;
        let mut an = Analyzer::new(config);
        // Stateful, as in the analysis: a segment in IP fragments comes out of its last fragment.
        let mut decoder = FrameDecoder::default();
        let mut encaps = EncapCounts::default();
        let give_up_after = Timestamp(t.last_seen.0.saturating_add(LATE_NANOS));
        // Its frames within its time range: when all are in, the rest of the file is not read.
        let mut seen: u64 = 0;
        let mut late: u32 = 0;
        loop {
            let frame = match cf.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                // Reported by the replay already; frames after it are read on.
                Err(_) => continue,
            };
            if frame.ts > give_up_after {
                late += 1;
                if late > LATE_FRAMES {
                    break;
                }
            } else {
                late = 0;
            }
            let Ok(Decoded::Tcp(seg)) = decoder.decode(
                frame.ts,
                frame.link,
                frame.data,
                frame.orig_len,
                &mut encaps,
            ) else {
                continue;
            };
            let ours = (seg.src == t.client && seg.dst == t.server)
                || (seg.src == t.server && seg.dst == t.client);
            if !ours {
                continue;
            }
            an.segment(frame.ts, &seg);
            if frame.ts >= t.first_seen && frame.ts <= t.last_seen {
                seen += 1;
            }
            if let Some(c) = take_match(an.take_finished(), t) {
                return Ok(c);
            }
            if seen >= t.packets {
                break;
            }
        }
        let (rest, _, _) = an.finish();
        take_match(rest, t).ok_or((
            ReloadError::NotFound {
                id: t.id,
                client: t.client,
                server: t.server,
            },
            seeked_ng,
        ))
    }
}

/// The connection of `conns` that is the target (same addresses and first packet), with the
/// target's id.
fn take_match(conns: Vec<Connection>, t: &Target) -> Option<Connection> {
    let mut c = conns.into_iter().find(|c| {
        c.first_seen == t.first_seen
            && c.client.parse::<SocketAddr>().ok() == Some(t.client)
            && c.server.parse::<SocketAddr>().ok() == Some(t.server)
    })?;
    c.id = t.id;
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(frames_before: u64, latest: Option<i64>) -> Checkpoint {
        Checkpoint {
            frames_before,
            offset: Some(24 + frames_before * 100),
            latest_before: latest.map(Timestamp),
        }
    }

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples")
            .join(name)
    }

    fn config(keys: Option<&str>) -> PipelineConfig {
        let keys = keys.map(|k| {
            let text = std::fs::read(sample(k)).expect("key log");
            crate::tls::SharedKeys(Arc::new(crate::tls::KeyLog::parse(&text)))
        });
        PipelineConfig {
            keys,
            ..PipelineConfig::default()
        }
    }

    /// A checkpoint before every frame, as the replay records one every few thousand: every
    /// load then seeks into the middle of the file.
    fn every_frame(path: &Path) -> SharedCheckpoints {
        let mut cf = CaptureFile::open(path).expect("opens");
        let mut c = Checkpoints::default();
        let mut latest = None;
        loop {
            let (frames_before, offset) = (cf.frames_read(), cf.next_record_offset());
            let f = match cf.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => continue,
            };
            c.record(Checkpoint {
                frames_before,
                offset,
                latest_before: latest,
            });
            latest = latest.max(Some(f.ts));
        }
        Arc::new(Mutex::new(c))
    }

    /// What a connection is, for comparing: its JSON, its packet time line and its exchanges'
    /// parts and headers (not in JSON). Retry marks come from the diagnosis, not the reload.
    fn shape(c: &Connection) -> String {
        let mut c = c.clone();
        for ex in &mut c.exchanges {
            ex.retry_of = None;
        }
        format!(
            "{}\n{:?}\n{:?}",
            serde_json::to_string(&c).expect("json"),
            c.timeline,
            c.exchanges
        )
    }

    /// Every connection of the sample, loaded again alone, equals the one the full replay gave,
    /// from a checkpoint at the start and from checkpoints before every frame.
    fn reloads_equal(name: &str, keys: Option<&str>) {
        let path = sample(name);
        let recorded = SharedCheckpoints::default();
        let report = crate::replay::replay(
            &path,
            crate::replay::ReplayOptions {
                config: config(keys),
                checkpoints: Some(recorded.clone()),
                ..crate::replay::ReplayOptions::default()
            },
            &mut |_| {},
            &mut |_| {},
        )
        .expect("replays");
        assert!(!report.connections.is_empty(), "{name}");
        assert!(!recorded.lock().expect("lock").is_empty(), "{name}");
        let each = every_frame(&path);
        if name.ends_with(".pcap") || name.ends_with(".pcapng") {
            // Uncompressed: some checkpoints are seeked to.
            let points = each.lock().expect("lock").points.clone();
            assert!(points.iter().skip(1).any(|p| p.offset.is_some()), "{name}");
        }
        for cps in [recorded, each] {
            let loader = Reloader::new(&path, config(keys), cps);
            for want in &report.connections {
                let target = Target {
                    id: want.id,
                    client: want.client.parse().expect("client"),
                    server: want.server.parse().expect("server"),
                    first_seen: want.first_seen,
                    last_seen: want.last_seen,
                    packets: want.packets,
                };
                let got = loader.load(&target).expect("loads");
                assert_eq!(got.id, want.id);
                assert_eq!(shape(&got), shape(want), "{name} connection {}", want.id);
            }
        }
    }

    #[test]
    fn reloaded_connection_equals_the_replayed_one() {
        for name in [
            "keepalive.pcap",
            "out-of-order.pcap",
            "multipart-anpr.pcap",
            "refused.pcap",
            "stall-no-answer.pcap",
            "ip-fragments.pcap",
            // pcapng: seeked while libpcap reads it, read again from the start up to the
            // checkpoint once the built-in reader took over at the second interface; gzip: read
            // again from the start.
            "two-interfaces.pcapng",
            "two-interfaces.pcapng.gz",
        ] {
            reloads_equal(name, None);
        }
    }

    #[test]
    fn reloaded_https_connection_is_decrypted_with_the_key_log() {
        reloads_equal("https-keepalive.pcap", Some("https-keepalive.keys"));
    }

    #[test]
    fn a_connection_not_in_the_file_is_a_typed_error() {
        let path = sample("keepalive.pcap");
        let loader = Reloader::new(
            &path,
            PipelineConfig::default(),
            SharedCheckpoints::default(),
        );
        let t = Target {
            id: 9,
            client: "10.9.9.9:1234".parse().expect("addr"),
            server: "10.9.9.8:80".parse().expect("addr"),
            first_seen: Timestamp(0),
            last_seen: Timestamp(1),
            packets: 3,
        };
        assert!(matches!(
            loader.load(&t),
            Err(ReloadError::NotFound { id: 9, .. })
        ));
    }

    #[test]
    fn checkpoint_before_a_time_leaves_no_frame_of_that_time_behind() {
        let mut c = Checkpoints::default();
        assert_eq!(c.before(Timestamp(5)), None);
        c.record(cp(0, None));
        c.record(cp(10, Some(10)));
        c.record(cp(20, Some(20)));
        // Out of order: a frame at 35 came before frame 30, so 30 is no start for time 32.
        c.record(cp(30, Some(35)));
        c.record(cp(40, Some(41)));
        let at = |t: i64| c.before(Timestamp(t)).map(|p| p.frames_before);
        assert_eq!(at(5), Some(0));
        assert_eq!(at(10), Some(0));
        assert_eq!(at(11), Some(10));
        assert_eq!(at(32), Some(20));
        assert_eq!(at(36), Some(30));
        assert_eq!(at(1000), Some(40));
    }
}
