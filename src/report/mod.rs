//! Headless output: the JSON document ([`json`]) and the readable text summary ([`text`]), both
//! built from one [`Report`]; for replays, [`stream`] and [`text::TextStream`] build the same
//! output while the capture is read, without holding every exchange.

pub mod json;
pub mod order;
pub mod stream;
pub mod text;

use crate::diagnose::{diagnose, Findings};
use crate::model::{Connection, Report};
use crate::pipeline::Counters;

/// Assemble the report: run the diagnosis over the finished connections.
pub fn build(
    source: &str,
    mut connections: Vec<Connection>,
    counters: &Counters,
    warnings: Vec<crate::capture::Warning>,
) -> Report {
    connections.sort_by_key(|c| (c.first_seen, c.id));
    let findings = diagnose(&mut connections, counters, counters.last_packet);
    assemble(source, connections, findings, warnings)
}

/// The report from connections in order and what the diagnosis found over them.
pub fn assemble(
    source: &str,
    connections: Vec<Connection>,
    findings: Findings,
    warnings: Vec<crate::capture::Warning>,
) -> Report {
    Report {
        source: source.to_string(),
        connections,
        stalls: findings.stalls,
        devices: findings.devices,
        summary: findings.summary,
        warnings,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// A bundled capture in `samples/`, for the report writers' tests.
    pub(crate) fn sample(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("samples")
            .join(name)
    }
}
