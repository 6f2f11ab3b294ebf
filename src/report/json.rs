//! The JSON document printed by `--json` (schema: docs/json-schema.md).

use std::io::Write;

use crate::model::Report;

/// Schema version, bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(serde::Serialize)]
struct Document<'a> {
    alarmscope: &'static str,
    schema: u32,
    #[serde(flatten)]
    report: &'a Report,
}

/// Write the report as one JSON document (pretty when `pretty`).
pub fn write(report: &Report, out: &mut dyn Write, pretty: bool) -> std::io::Result<()> {
    let doc = Document {
        alarmscope: env!("CARGO_PKG_VERSION"),
        schema: SCHEMA_VERSION,
        report,
    };
    if pretty {
        serde_json::to_writer_pretty(&mut *out, &doc)?;
    } else {
        serde_json::to_writer(&mut *out, &doc)?;
    }
    out.write_all(b"\n")
}
