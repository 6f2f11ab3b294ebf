//! Diagnosis: verdicts, stalls, retries and per-device summaries over a set of connections.
