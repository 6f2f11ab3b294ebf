//! How fast sniff's live loop can go when packets never wait: the headless sniff loop
//! (`sniff::run_headless_on`: analysis, live diagnosis with its ticks, JSON lines) fed from a
//! capture file as fast as it reads, with capture time as the clock. Sniff keeps up with a link
//! when this rate is above the link's event rate with room to spare (the capture itself, the
//! kernel copy and the other processes take the rest); benches/sniff_load.sh measures the live
//! path itself.
//!
//! Usage: cargo run --release --example sniff_offline -- FILE.pcap [--text]

use std::time::Instant;

use alarmscope::capture::file::CaptureFile;
use alarmscope::sniff::{run_headless_on, FileInput, FrameSource, SniffOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let mut src = FileInput::new(file);
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
