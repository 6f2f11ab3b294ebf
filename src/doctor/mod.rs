//! `alarmscope doctor`: walk the whole chain for one device and show where its events are lost.
pub mod check;
pub mod judge;
