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
    /// Capture live on an interface and judge every push as it happens.
    Sniff(SniffArgs),
    /// Read or change a device's alarm hosts over ISAPI (digest authentication).
    Device(crate::device::DeviceArgs),
    /// Walk the whole chain for one device (reachable, alarm hosts, event linkage, live proof)
    /// and show where its events are lost.
    Doctor(crate::doctor::DoctorArgs),
    /// Behave like devices: push events, retry and stall like them, optionally serve ISAPI.
    Simulate(crate::simulate::SimulateArgs),
    /// Be the alarm server: store every pushed event durably, answer 200 OK (or fail on purpose).
    Listen(crate::listen::cli::ListenArgs),
    /// List what `listen` stored, or export it as one directory of files per event.
    Store(crate::store::cli::StoreArgs),
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

pub use crate::filter::FilterArgs;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture file (pcap or pcapng, gzip-compressed or not).
    pub file: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Write every body part (event metadata and pictures) to files in DIR.
    #[arg(long, value_name = "DIR")]
    pub extract: Option<PathBuf>,
    /// Indent the JSON document.
    #[arg(long)]
    pub pretty: bool,
    /// Write the whole original frames (link type and timestamps kept) of the connections that
    /// hold a row passing the filters (all connections without filters) to this pcap file. Without
    /// --json or --text only a one-line note is printed.
    #[arg(long, value_name = "OUT.pcap")]
    pub export_pcap: Option<PathBuf>,
    /// Decrypt HTTPS connections whose session is in this NSS key log (SSLKEYLOGFILE, or the
    /// one `listen --tls --keylog` writes): their exchanges are judged like plain HTTP.
    #[arg(long, value_name = "KEYS")]
    pub keylog: Option<PathBuf>,
    /// In the TUI, do not draw the exchanges' JPEG pictures in the detail pane (their checks are
    /// still shown).
    #[arg(long)]
    pub no_pictures: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct SniffArgs {
    /// Interface to capture on (default: `any` on Linux).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// BPF capture filter, e.g. "tcp port 8080 and host 10.0.0.5".
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Shorthand for the filter "tcp port N" (combined with --filter by "and").
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Also save the raw packets to this pcap file (replay it later, attach it to a ticket).
    #[arg(long, value_name = "FILE.pcap")]
    pub write: Option<PathBuf>,
    /// Decrypt HTTPS connections whose session is in this NSS key log, re-read as it grows (the
    /// one `listen --tls --keylog` writes, or a server's SSLKEYLOGFILE).
    #[arg(long, value_name = "KEYS")]
    pub keylog: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Stop after this many exchanges have been judged.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Report a complete request as no_response when unanswered this long (corrected if the
    /// answer comes later).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub answer_timeout: f64,
    /// Close and judge connections idle this long (bounds memory on a busy server; the table also
    /// holds at most 100000 connections, least recently active evicted first). Both are counted
    /// in the summary (connections_expired, connections_evicted).
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub idle_timeout: f64,
    /// Kernel capture buffer in MiB: packets arriving while it is full are dropped by the kernel
    /// (counted; verdicts they could have changed are marked uncertain). Raise it when the
    /// summary reports kernel drops.
    #[arg(long, value_name = "MB", default_value_t = 64)]
    pub buffer_size: u32,
    /// List the interfaces that can be captured on, and exit.
    #[arg(long)]
    pub list_interfaces: bool,
    #[command(flatten)]
    pub rows: FilterArgs,
}

/// Entry point used by `main`. Returns the process exit code.
pub fn run() -> anyhow::Result<i32> {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(a) => run_replay(a),
        Command::Sniff(a) => run_sniff(a),
        Command::Device(a) => crate::device::run(a),
        Command::Doctor(a) => crate::doctor::run(a),
        Command::Simulate(a) => crate::simulate::run(a),
        Command::Listen(a) => crate::listen::cli::run(a),
        Command::Store(a) => crate::store::cli::run(a),
    }
}

/// Read a whole key log (replay); its unreadable lines are notes on stderr.
fn load_keylog(path: &std::path::Path) -> anyhow::Result<crate::tls::SharedKeys> {
    let text =
        std::fs::read(path).with_context(|| format!("cannot read key log {}", path.display()))?;
    let log = crate::tls::KeyLog::parse(&text);
    for w in log.warnings() {
        eprintln!("alarmscope: key log {}: {w}", path.display());
    }
    if log.warnings_dropped() > 0 {
        eprintln!(
            "alarmscope: key log {}: {} more lines not read",
            path.display(),
            log.warnings_dropped()
        );
    }
    Ok(crate::tls::SharedKeys(std::sync::Arc::new(log)))
}

fn run_replay(a: ReplayArgs) -> anyhow::Result<i32> {
    let filter = match a.filter.to_filter() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("alarmscope: {e}");
            return Ok(2);
        }
    };
    let mut opts = ReplayOptions::default();
    if let Some(path) = &a.keylog {
        opts.config.keys = Some(load_keylog(path)?);
    }
    if let Some(dir) = &a.extract {
        let x = Extractor::new(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        opts.sink = Some(Box::new(x));
    }
    let headless = a.output.json
        || a.output.text
        || a.export_pcap.is_some()
        || !std::io::stdout().is_terminal();
    if !headless {
        return crate::tui::run_replay(&a.file, opts, !a.no_pictures);
    }
    // The reports read the event fields only: no element tree per event (same output).
    opts.config.body.event_tree = crate::isapi::TreeDetail::FieldsOnly;
    // Block-buffered: a locked stdout is line-buffered and scans every write for newlines.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    // Connections chosen for --export-pcap, and rows selected (for the text report's note).
    let mut selection = crate::export::Selection::default();
    let want_export = a.export_pcap.is_some();
    let mut rows_selected: u64 = 0;
    let mut rows_total: u64 = 0;
    // TLS connections given to the decryptor, and those whose session the key log lacks.
    let mut keyed = [0u64; 2];
    let mut note = |c: &crate::model::Connection| {
        if let Some(d) = &c.decryption {
            keyed[0] += 1;
            keyed[1] += u64::from(
                d.findings
                    .iter()
                    .any(|f| matches!(f, crate::tls::decrypt::DecryptFinding::KeyNotInLog { .. })),
            );
        }
        let n = filter.count_rows(c);
        rows_selected += n;
        rows_total += c.exchanges.len().max(1) as u64;
        if want_export && n > 0 {
            selection.add(c);
        }
    };
    // Replay handing each finished connection to `add`; None (after a one-line message) when
    // the file cannot be read.
    let stream = |opts: ReplayOptions, add: &mut dyn FnMut(crate::model::Connection)| {
        match crate::replay::replay_each(&a.file, opts, &mut |_| {}, &mut |done| {
            done.into_iter().for_each(&mut *add)
        }) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("alarmscope: {e}");
                None
            }
        }
    };
    let printed = a.output.json || a.output.text;
    let warnings = if (a.output.json && !a.pretty) || !printed {
        // Streamed: memory stays flat however long the capture (report::stream).
        let mut doc = crate::report::stream::JsonStream::with_temp_file();
        let Some((counters, warnings)) = stream(opts, &mut |c| {
            note(&c);
            if printed {
                doc.add_filtered(c, &filter);
            }
        }) else {
            return Ok(2);
        };
        if printed {
            doc.finish(
                &a.file.display().to_string(),
                &counters,
                &warnings,
                &mut out,
            )?;
        }
        warnings
    } else if !a.output.json {
        // --text, streamed the same way: only the connections of the listed problems are kept.
        let mut doc = crate::report::text::TextStream::default();
        let Some((counters, warnings)) = stream(opts, &mut |c| {
            note(&c);
            doc.add_filtered(c, &filter);
        }) else {
            return Ok(2);
        };
        let text = doc.finish(&a.file.display().to_string(), &counters, warnings.clone());
        if !filter.is_empty() {
            writeln!(
                out,
                "filter: {filter}: {rows_selected} of {rows_total} rows selected (problems below are among them; totals are the whole capture's)"
            )?;
        }
        out.write_all(text.as_bytes())?;
        warnings
    } else {
        let mut report = match replay(&a.file, opts, &mut |_| {}, &mut |_| {}) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("alarmscope: {e}");
                return Ok(2);
            }
        };
        report.connections.iter().for_each(&mut note);
        let conns = std::mem::take(&mut report.connections);
        report.connections = conns.into_iter().filter_map(|c| filter.select(c)).collect();
        crate::report::json::write(&report, &mut out, a.pretty)?;
        report.warnings
    };
    out.flush()?;
    if let Some(path) = &a.keylog {
        if keyed[0] > 0 && keyed[1] == keyed[0] {
            eprintln!(
                "alarmscope: none of the {} TLS sessions is in the key log {}: is it the log of this capture's server or device?",
                keyed[0],
                path.display()
            );
        }
    }
    for w in warnings.iter().filter(|w| w.file_cut()) {
        eprintln!("alarmscope: warning: {w}");
    }
    if let Some(path) = &a.export_pcap {
        match crate::export::export_pcap(&a.file, &selection, path) {
            Ok(stats) => eprintln!("alarmscope: exported {stats} to {}", path.display()),
            Err(e) => {
                eprintln!("alarmscope: export: {e}");
                return Ok(2);
            }
        }
    }
    Ok(0)
}

/// The effective BPF filter from --filter and --port.
pub fn sniff_filter(filter: Option<&str>, port: Option<u16>) -> Option<String> {
    match (filter, port) {
        (Some(f), Some(p)) => Some(format!("(tcp port {p}) and ({f})")),
        (Some(f), None) => Some(f.to_string()),
        (None, Some(p)) => Some(format!("tcp port {p}")),
        (None, None) => None,
    }
}

/// Seconds from the command line: negative, NaN or zero give 0; too large for a `Duration`
/// (`from_secs_f64` would panic, e.g. `--duration 1e20`) gives the largest one.
fn secs(s: f64) -> std::time::Duration {
    let s = if s.is_finite() && s > 0.0 { s } else { 0.0 };
    std::time::Duration::try_from_secs_f64(s).unwrap_or(std::time::Duration::MAX)
}

fn run_sniff(a: SniffArgs) -> anyhow::Result<i32> {
    use crate::sniff::{install_stop_signals, run_headless, SniffOptions};
    if a.list_interfaces {
        match crate::capture::live::list_interfaces() {
            Ok(list) => {
                for l in list {
                    println!("{l}");
                }
                return Ok(0);
            }
            Err(e) => {
                eprintln!("alarmscope: {e}");
                return Ok(2);
            }
        }
    }
    let rows = match a.rows.to_filter() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("alarmscope: {e}");
            return Ok(2);
        }
    };
    let mut opts = SniffOptions {
        rows,
        ..SniffOptions::default()
    };
    opts.live.interface = a.interface.clone();
    opts.live.filter = sniff_filter(a.filter.as_deref(), a.port);
    opts.live.write = a.write.clone();
    opts.keylog = a.keylog.clone();
    opts.live.buffer_size =
        i32::try_from(u64::from(a.buffer_size.max(1)) << 20).unwrap_or(i32::MAX);
    opts.duration = a.duration.map(secs);
    opts.count = a.count;
    opts.answer_timeout = secs(a.answer_timeout);
    opts.idle_timeout = secs(a.idle_timeout);
    let headless = a.output.json || a.output.text || !std::io::stdout().is_terminal();
    if !headless {
        let title = format!(
            "sniff {}{}",
            opts.live
                .interface
                .clone()
                .unwrap_or_else(crate::capture::live::default_interface),
            opts.live
                .filter
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default()
        );
        return match crate::sniff::spawn_feed(opts) {
            Ok(rx) => crate::tui::run_live(title, rx),
            Err(e) => {
                eprintln!("alarmscope: {e}");
                Ok(2)
            }
        };
    }
    install_stop_signals();
    // The lines read the event fields only: no element tree per event (same output).
    opts.pipeline.body.event_tree = crate::isapi::TreeDetail::FieldsOnly;
    let mut out = std::io::stdout().lock();
    match run_headless(&opts, a.output.json, &mut out) {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("alarmscope: {e}");
            Ok(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn seconds_from_the_command_line_never_panic() {
        assert_eq!(secs(1.5), Duration::from_millis(1500));
        assert_eq!(secs(-3.0), Duration::ZERO);
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(f64::INFINITY), Duration::ZERO);
        assert_eq!(secs(1e20), Duration::MAX);
    }
}
