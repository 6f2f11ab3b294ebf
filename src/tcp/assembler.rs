//! Out-of-order reassembly of one direction of a TCP stream.
//!
//! Rules (from what Wireshark, Zeek, gopacket and smoltcp learned):
//! - sequence numbers compare with wrapping arithmetic;
//! - overlapping or retransmitted bytes: the bytes that arrived first win; retransmissions whose
//!   bytes differ are counted as inconsistent;
//! - a 1-byte keep-alive probe re-sending an old byte never overwrites data;
//! - a hole is never filled with zeros: it is reported as an explicit gap of N bytes;
//! - work and memory are bounded: a fixed maximum of buffered out-of-order bytes and holes; past
//!   that the earliest hole is declared a gap and delivery moves on.
