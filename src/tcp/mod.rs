//! TCP stage: per-connection state (handshake, close) and per-direction reassembly.
//!
//! [`assembler`] turns segments of one direction into in-order bytes plus explicit gaps;
//! [`tracker`] keeps the connection table, judges the handshake, and emits [`TcpEvent`]s.
//! Both are sans-IO: segments and timestamps in, events out.

pub mod assembler;
pub mod tracker;

pub use assembler::{Assembler, AssemblerStats, Chunk};
pub use tracker::{
    CloseKind, ConnInfo, Direction, Handshake, PacketNote, Side, TcpConfig, TcpEvent, TcpTracker,
    TrackerStats,
};
