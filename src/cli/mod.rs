//! Command line: clap definitions and dispatch to the mode shells.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::extract::Extractor;
use crate::replay::{replay, ReplayOptions};

/// Why ISAPI alarm pushes go missing: replay a capture, sniff live, or be the alarm server.
#[derive(Debug, Parser)]
#[command(name = "alarmscope", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse a pcap/pcapng capture: handshake, request, answer and verdict for every push.
    Replay(ReplayArgs),
    /// Read or change a device's alarm hosts over ISAPI (digest authentication).
    Device(crate::device::DeviceArgs),
    /// Behave like devices: push events, retry and stall like them, optionally serve ISAPI.
    Simulate(crate::simulate::SimulateArgs),
}

/// How results are shown.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Print one JSON document (replay) or JSON lines (live modes) instead of the TUI.
    #[arg(long, conflicts_with = "text")]
    pub json: bool,
    /// Print a readable text summary instead of the TUI.
    #[arg(long)]
    pub text: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture file (pcap or pcapng).
    pub file: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Write every body part (event metadata and pictures) to files in DIR.
    #[arg(long, value_name = "DIR")]
    pub extract: Option<PathBuf>,
    /// Indent the JSON document.
    #[arg(long)]
    pub pretty: bool,
}

/// Entry point used by `main`. Returns the process exit code.
pub fn run() -> anyhow::Result<i32> {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(a) => run_replay(a),
        Command::Device(a) => crate::device::run(a),
        Command::Simulate(a) => crate::simulate::run(a),
    }
}

fn run_replay(a: ReplayArgs) -> anyhow::Result<i32> {
    let mut opts = ReplayOptions::default();
    if let Some(dir) = &a.extract {
        let x = Extractor::new(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        opts.sink = Some(Box::new(x));
    }
    let headless = a.output.json || a.output.text || !std::io::stdout().is_terminal();
    if !headless {
        return crate::tui::run_replay(&a.file, opts);
    }
    let report = match replay(&a.file, opts, &mut |_| {}, &mut |_| {}) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("alarmscope: {e}");
            return Ok(2);
        }
    };
    let mut out = std::io::stdout().lock();
    if a.output.json {
        crate::report::json::write(&report, &mut out, a.pretty)?;
    } else {
        out.write_all(crate::report::text::render(&report).as_bytes())?;
    }
    for w in report.warnings.iter().filter(|w| w.contains("ends mid-record") || w.contains("truncated")) {
        eprintln!("alarmscope: warning: {w}");
    }
    Ok(0)
}
