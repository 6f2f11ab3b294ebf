//! `alarmscope store`: list a listener's store and export events as one directory per event
//! (the store itself keeps events in segment files; see the module docs of [`crate::store`]).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{export, read_index, IndexLine};

/// Look at what `alarmscope listen` stored.
#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub action: StoreAction,
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// One line per stored event: seq, receive time, device, event type, files and sizes.
    Ls {
        /// The store directory (as printed by `listen` at start).
        dir: PathBuf,
        /// One JSON index line per event instead.
        #[arg(long)]
        json: bool,
    },
    /// Write events as files: OUT/DATE/SEQ-DEVICE-TYPE/{meta.json, body.xml, p1-NAME.jpg}.
    Export {
        /// The store directory.
        dir: PathBuf,
        /// Where to write (created if needed).
        out: PathBuf,
        /// Only these sequence numbers (repeatable); default: every event.
        #[arg(long = "seq", value_name = "N")]
        seqs: Vec<u64>,
        /// Only events of this type (e.g. ANPR, VMD, AccessControllerEvent).
        #[arg(long = "type", value_name = "EVENT_TYPE")]
        event_type: Option<String>,
    },
}

fn keep(seqs: &[u64], ty: Option<&str>, l: &IndexLine) -> bool {
    (seqs.is_empty() || seqs.contains(&l.seq))
        && ty.is_none_or(|t| {
            l.event_type
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(t))
        })
}

/// Run `store`. Exit code 0, or 2 with a one-line message when the store cannot be read.
pub fn run(a: StoreArgs) -> anyhow::Result<i32> {
    match a.action {
        StoreAction::Ls { dir, json } => {
            let index = match read_index(&dir) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("alarmscope: {}: {e}", dir.join(super::INDEX_FILE).display());
                    return Ok(2);
                }
            };
            let mut out = std::io::stdout().lock();
            for l in &index {
                if json {
                    writeln!(out, "{}", serde_json::to_string(l)?)?;
                    continue;
                }
                let secs = l.time.floor();
                let time =
                    crate::time::Timestamp::from_nanos(secs as i64, ((l.time - secs) * 1e9) as i64)
                        .to_utc_string();
                let files: Vec<String> = l
                    .files
                    .iter()
                    .skip(1)
                    .map(|f| format!("{} {}B", f.file, f.bytes))
                    .collect();
                writeln!(
                    out,
                    "{:>8}  {}  {:<22} {:<24} {}",
                    l.seq,
                    time,
                    l.client,
                    l.event_type.as_deref().unwrap_or("-"),
                    files.join(", ")
                )?;
            }
            if !json {
                writeln!(out, "{} events", index.len())?;
            }
            Ok(0)
        }
        StoreAction::Export {
            dir,
            out,
            seqs,
            event_type,
        } => match export(&dir, &out, |l| keep(&seqs, event_type.as_deref(), l)) {
            Ok((events, files)) => {
                eprintln!(
                    "alarmscope: {events} events, {files} files written to {}",
                    out.display()
                );
                Ok(0)
            }
            Err(e) => {
                eprintln!("alarmscope: export from {}: {e}", dir.display());
                Ok(2)
            }
        },
    }
}
