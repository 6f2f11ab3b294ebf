//! Numbers of the TLS record and handshake layers (RFC 8446, RFC 5246), shared by the keyless
//! analysis (`conn`) and the decryptor (`decrypt`) so both read records the same way.

/// Record content types.
pub(crate) const CT_CCS: u8 = 20;
pub(crate) const CT_ALERT: u8 = 21;
pub(crate) const CT_HANDSHAKE: u8 = 22;
pub(crate) const CT_APP_DATA: u8 = 23;
pub(crate) const CT_HEARTBEAT: u8 = 24;

/// Handshake message types.
pub(crate) const HS_CLIENT_HELLO: u8 = 1;
pub(crate) const HS_SERVER_HELLO: u8 = 2;
pub(crate) const HS_CERTIFICATE: u8 = 11;
pub(crate) const HS_FINISHED: u8 = 20;
pub(crate) const HS_KEY_UPDATE: u8 = 24;

/// ServerHello.random of a TLS 1.3 HelloRetryRequest (RFC 8446 section 4.1.3).
pub(crate) const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];
