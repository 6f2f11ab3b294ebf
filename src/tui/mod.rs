//! The terminal UI (ratatui + crossterm): a view over analysis results shared by replay, sniff and
//! listen.

use std::path::Path;

use crate::replay::ReplayOptions;

/// Open the TUI on a capture file.
pub fn run_replay(path: &Path, opts: ReplayOptions) -> anyhow::Result<i32> {
    // Until the TUI lands, show the text report.
    let report = crate::replay::replay(path, opts, &mut |_| {}, &mut |_| {})?;
    print!("{}", crate::report::text::render(&report));
    Ok(0)
}
