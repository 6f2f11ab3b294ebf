//! `alarmscope device`: read and change a device's alarm hosts over ISAPI.
pub mod hosts;
