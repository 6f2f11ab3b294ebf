//! Headless output: the JSON document and the readable text summary.
