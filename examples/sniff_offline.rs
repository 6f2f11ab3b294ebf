//! How fast sniff's live loop can go when packets never wait: the headless sniff loop
//! (`sniff::run_headless_on`: analysis, live diagnosis with its ticks, JSON lines) fed from a
//! capture file as fast as it reads, with capture time as the clock. Sniff keeps up with a link
//! when this rate is above the link's event rate with room to spare (the capture itself, the
//! kernel copy and the other processes take the rest); benches/sniff_load.sh measures the live
//! path itself.
//!
//! Usage: cargo run --release --example sniff_offline -- FILE.pcap [--text]

use std::time::{Duration, Instant};

use alarmscope::capture::file::{CaptureFile, RawFrame};
use alarmscope::capture::live::{LiveError, LiveStats};
use alarmscope::sniff::{run_headless_on, FrameSource, SniffOptions};
use alarmscope::time::Timestamp;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A capture file as a live source: its own timestamps are the clock.
struct FileSource {
    file: CaptureFile,
    first: Option<Timestamp>,
    last: Timestamp,
    done: bool,
}

impl FrameSource for FileSource {
    fn next_frame(&mut self, _wait: Duration) -> Result<Option<RawFrame<'_>>, LiveError> {
        match self.file.next_frame() {
            Ok(Some(f)) => {
                self.first.get_or_insert(f.ts);
                self.last = f.ts;
                Ok(Some(f))
            }
            _ => {
                self.done = true;
                Ok(None)
            }
        }
    }
    fn elapsed(&self) -> Duration {
        let first = self.first.unwrap_or(self.last);
        Duration::from_nanos(u64::try_from(self.last.0 - first.0).unwrap_or(0))
    }
    fn now(&self) -> Timestamp {
        self.last
    }
    fn stop_requested(&self) -> bool {
        self.done
    }
    fn flush(&mut self) {}
    fn stats(&mut self) -> LiveStats {
        LiveStats::default()
    }
    fn name(&self) -> &str {
        "file"
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: sniff_offline FILE.pcap [--text]");
        std::process::exit(2);
    };
    let json = !args.iter().any(|a| a == "--text");
    let file = match CaptureFile::open(std::path::Path::new(path)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut src = FileSource {
        file,
        first: None,
        last: Timestamp(0),
        done: false,
    };
    let mut opts = SniffOptions::default();
    // As `sniff --json/--text` runs: the event fields without the element tree.
    opts.pipeline.body.event_tree = alarmscope::isapi::TreeDetail::FieldsOnly;
    let mut out = std::io::BufWriter::new(std::io::sink());
    let t = Instant::now();
    match run_headless_on(&mut src, &opts, json, &mut out) {
        Ok(r) => {
            let secs = t.elapsed().as_secs_f64();
            let span = src.elapsed().as_secs_f64();
            println!(
                "{} packets, {} requests in {secs:.2} s: {:.0} events/s, {:.0} packets/s (the capture spans {span:.1} s: {:.1}x real time)",
                r.packets,
                r.summary.requests,
                r.summary.requests as f64 / secs,
                r.packets as f64 / secs,
                span / secs
            );
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
