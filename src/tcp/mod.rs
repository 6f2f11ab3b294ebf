//! TCP stage: per-connection state (handshake, close) and per-direction reassembly.
//!
//! [`assembler`] turns segments of one direction into in-order bytes plus explicit gaps;
//! [`tracker`] keeps the connection table, judges the handshake, and emits [`TcpEvent`]s;
//! [`oneside`] keeps what the client's ACKs prove when the server's packets are not captured;
//! [`seq`] is the wrapping sequence-number arithmetic they share.
//! All are sans-IO: segments and timestamps in, events out.

pub mod assembler;
pub mod oneside;
pub mod seq;
pub mod tracker;

pub use assembler::{Assembler, AssemblerStats, Chunk};
pub use oneside::{AckLog, AckedAnswer, OneSided};
pub use seq::SeqNumber;
pub use tracker::{
    CloseKind, ConnInfo, Direction, Handshake, PacketNote, Side, TcpConfig, TcpEvent, TcpTracker,
    TrackerStats,
};
