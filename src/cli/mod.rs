//! Command line: clap definitions and dispatch to the mode shells.

/// Entry point used by `main`.
pub fn run() -> anyhow::Result<i32> {
    Ok(0)
}
