//! The messages a background producer (file replay, live sniffer, built-in listener) sends to
//! whatever shows its results. A module of its own, beside the modes and the TUI, so that the
//! producers depend on this vocabulary and not on the TUI that happens to consume it.

use crate::model::{Connection, Report};
use crate::replay::Progress;

/// What a background producer (file replay, live sniffer, built-in listener) tells the screen.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // the shape is the interface; one Final per session
pub enum Feed {
    /// How far loading has got (file modes; live modes may send packet counts with size 0).
    Progress(Progress),
    /// Connections to add, or to replace when their id is already shown (live modes send open
    /// connections again as they change).
    Upsert(Vec<Connection>),
    /// The whole result: loading is over.
    Final(Report),
    /// The producer stopped with this error.
    Error(String),
    /// Something went wrong while the producer goes on (the listener's store could not write its
    /// index, accept failed ...): listed under `w`.
    Warning(String),
}
