//! `alarmscope simulate`: behave like one or more devices pushing events.
pub mod events;
pub mod machine;
