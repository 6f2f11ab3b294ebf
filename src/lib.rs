//! alarmscope: find out why ISAPI alarm pushes from cameras, ANPR cameras and access terminals go
//! missing.
//!
//! The crate is laid out by pipeline stage. Everything up to and including [`diagnose`] is a pure,
//! synchronous, input-driven state machine (no sockets, files, clocks or terminals), so the same
//! code serves a pcap replay, a live sniff and the built-in alarm server:
//!
//! ```text
//! capture (frames) -> tcp (connections, reassembly) -> http (messages) -> isapi (events, parts)
//!                                  \______ pipeline (routing) -> exchange ______/
//!                                      (one builder and Verdict::of, also for listen)
//!                                                     |
//!                                              diagnose (verdicts, stalls, retries, devices)
//!                                                     |
//!                                            report (JSON, text) / tui
//! ```
//!
//! docs/architecture.md says which stage owns what and which shell owns which I/O.

pub mod capture;
pub mod cli;
pub mod device;
pub mod diagnose;
pub mod doctor;
pub mod exchange;
pub mod export;
pub mod extract;
pub mod feed;
pub mod filter;
pub mod http;
pub mod isapi;
pub mod listen;
pub mod model;
pub mod pipeline;
pub mod reload;
pub mod replay;
pub mod report;
pub mod simulate;
pub mod sniff;
pub mod store;
pub mod stream_index;
pub mod tcp;
pub mod time;
pub mod tls;
pub mod tui;
