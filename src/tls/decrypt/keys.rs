//! Key schedules and record protection: which suites can be decrypted, the TLS 1.2 PRF key
//! block (RFC 5246 section 6.3, RFC 5288, RFC 7905), TLS 1.3 HKDF-Expand-Label traffic keys
//! (RFC 8446 section 7), and opening one record.
//!
//! Every primitive (AES-GCM, ChaCha20-Poly1305, HMAC, HKDF) is `ring`'s, already in the tree
//! through rustls; only the byte layouts of labels, nonces and additional data are written here.

use ring::{aead, hkdf, hmac};
use serde::Serialize;

use crate::tls::types::{CipherSuite, ProtocolVersion};

/// The AEAD of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Aead {
    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Aead::Aes128Gcm => &aead::AES_128_GCM,
            Aead::Aes256Gcm => &aead::AES_256_GCM,
            Aead::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    fn key_len(self) -> usize {
        self.algorithm().key_len()
    }

    /// TLS 1.2 implicit IV: 4 bytes salt for GCM (the record carries 8), 12 for ChaCha20.
    fn tls12_iv_len(self) -> usize {
        match self {
            Aead::Chacha20Poly1305 => 12,
            _ => 4,
        }
    }
}

/// The hash of a suite's PRF / HKDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha384 => hmac::HMAC_SHA384,
        }
    }

    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Hash::Sha256 => hkdf::HKDF_SHA256,
            Hash::Sha384 => hkdf::HKDF_SHA384,
        }
    }

    /// Output length in bytes (the length of TLS 1.3 secrets of this suite).
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// A suite this stage decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub aead: Aead,
    pub hash: Hash,
}

/// Why a negotiated suite is not decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// CBC with HMAC (MAC-then-encrypt, TLS 1.0-1.2): needs CBC decryption, MAC and padding
    /// checks that `ring` does not offer and that are easy to get wrong; devices that offer
    /// TLS 1.2 also offer GCM, which servers prefer.
    CbcMode,
    /// AES-CCM (TLS 1.3 `TLS_AES_128_CCM_*`, TLS 1.2 `*_CCM*`): `ring` has no CCM, and it is
    /// rare outside IoT profiles.
    Ccm,
    /// Stream ciphers, NULL encryption, export and other legacy suites (RC4, 3DES, NULL...).
    Legacy,
    /// SSL 3.0, TLS 1.0 or 1.1: only CBC or RC4 suites exist there.
    OldVersion,
    /// A suite number this stage does not know.
    Unknown,
}

impl Refusal {
    /// Why, in words.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::CbcMode => "CBC suites (MAC-then-encrypt) are not decrypted",
            Refusal::Ccm => "AES-CCM suites are not decrypted",
            Refusal::Legacy => "legacy suites (RC4, 3DES, NULL, export) are not decrypted",
            Refusal::OldVersion => {
                "SSL 3.0, TLS 1.0 and 1.1 are not decrypted (they have only CBC or RC4 suites)"
            }
            Refusal::Unknown => "this cipher suite is not known",
        }
    }
}

/// The suite behind a ServerHello's choice, or why it is refused.
pub fn suite(version: ProtocolVersion, cs: CipherSuite) -> Result<Suite, Refusal> {
    use Aead::*;
    use Hash::*;
    let s = |aead, hash| Ok(Suite { aead, hash });
    if version == ProtocolVersion::TLS13 {
        return match cs.0 {
            0x1301 => s(Aes128Gcm, Sha256),
            0x1302 => s(Aes256Gcm, Sha384),
            0x1303 => s(Chacha20Poly1305, Sha256),
            0x1304 | 0x1305 => Err(Refusal::Ccm),
            _ => Err(Refusal::Unknown),
        };
    }
    if version < ProtocolVersion::TLS12 {
        return Err(Refusal::OldVersion);
    }
    match cs.0 {
        // ECDHE_ECDSA, ECDHE_RSA, RSA, DHE_RSA with AES-128-GCM-SHA256.
        0xc02b | 0xc02f | 0x009c | 0x009e => s(Aes128Gcm, Sha256),
        // ... with AES-256-GCM-SHA384.
        0xc02c | 0xc030 | 0x009d | 0x009f => s(Aes256Gcm, Sha384),
        // ECDHE_RSA, ECDHE_ECDSA, DHE_RSA with ChaCha20-Poly1305 (RFC 7905).
        0xcca8..=0xccaa => s(Chacha20Poly1305, Sha256),
        _ => Err(refusal_by_name(cs)),
    }
}

/// Classify a refused TLS 1.2 suite by its IANA name.
fn refusal_by_name(cs: CipherSuite) -> Refusal {
    let Some(name) = cs.name() else {
        return Refusal::Unknown;
    };
    if name.contains("_CCM") {
        Refusal::Ccm
    } else if name.contains("_CBC_") {
        Refusal::CbcMode
    } else {
        Refusal::Legacy
    }
}

/// The output length of an HKDF expansion (ring wants a `KeyType`).
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", len) (RFC 8446 section 7.1).
pub fn expand_label(hash: Hash, secret: &[u8], label: &[u8], len: usize) -> Option<Vec<u8>> {
    let prk = hkdf::Prk::new_less_safe(hash.hkdf(), secret);
    let out_len = u16::try_from(len).ok()?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).ok()?];
    let info: [&[u8]; 5] = [&out_len, &label_len, b"tls13 ", label, &[0]];
    let okm = prk.expand(&info, Len(len)).ok()?;
    let mut out = vec![0; len];
    okm.fill(&mut out).ok()?;
    Some(out)
}

/// TLS 1.2 PRF: P_hash(secret, label + seed) cut to `len` (RFC 5246 section 5).
pub fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[&[u8]], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(hash.hmac(), secret);
    let hmac_of = |parts: &[&[u8]]| {
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign()
    };
    let mut parts: Vec<&[u8]> = vec![label];
    parts.extend_from_slice(seed);
    let mut a = hmac_of(&parts); // A(1)
    let mut out = Vec::with_capacity(len + hash.output_len());
    while out.len() < len {
        let mut block: Vec<&[u8]> = vec![a.as_ref()];
        block.extend_from_slice(&parts);
        out.extend_from_slice(hmac_of(&block).as_ref());
        a = hmac_of(&[a.as_ref()]);
    }
    out.truncate(len);
    out
}

/// How a record's nonce and additional data are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// TLS 1.2 AES-GCM: 4-byte salt + 8-byte explicit nonce at the start of the record.
    Tls12ExplicitNonce,
    /// TLS 1.2 ChaCha20-Poly1305: IV xor sequence number.
    Tls12Xor,
    /// TLS 1.3: IV xor sequence number, AAD = the record header.
    Tls13,
}

/// The keys protecting one direction of a connection (one epoch in TLS 1.3).
pub struct RecordKey {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    layout: Layout,
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordKey({:?})", self.layout)
    }
}

/// AEAD tag length of every supported suite.
pub const TAG_LEN: usize = 16;

impl RecordKey {
    fn new(aead: Aead, key: &[u8], iv: &[u8], layout: Layout) -> Option<RecordKey> {
        let unbound = aead::UnboundKey::new(aead.algorithm(), key).ok()?;
        let mut fixed = [0u8; 12];
        fixed.get_mut(..iv.len())?.copy_from_slice(iv);
        Some(RecordKey {
            key: aead::LessSafeKey::new(unbound),
            iv: fixed,
            layout,
        })
    }

    /// TLS 1.3 keys of a traffic secret.
    pub fn tls13(suite: Suite, secret: &[u8]) -> Option<RecordKey> {
        let key = expand_label(suite.hash, secret, b"key", suite.aead.key_len())?;
        let iv = expand_label(suite.hash, secret, b"iv", 12)?;
        RecordKey::new(suite.aead, &key, &iv, Layout::Tls13)
    }

    /// TLS 1.2 keys of both directions (client's first) from the master secret.
    pub fn tls12(
        suite: Suite,
        master: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> Option<(RecordKey, RecordKey)> {
        let (kl, il) = (suite.aead.key_len(), suite.aead.tls12_iv_len());
        let block = prf(
            suite.hash,
            master,
            b"key expansion",
            &[server_random, client_random],
            2 * kl + 2 * il,
        );
        let layout = match suite.aead {
            Aead::Chacha20Poly1305 => Layout::Tls12Xor,
            _ => Layout::Tls12ExplicitNonce,
        };
        let ck = block.get(..kl)?;
        let sk = block.get(kl..2 * kl)?;
        let civ = block.get(2 * kl..2 * kl + il)?;
        let siv = block.get(2 * kl + il..)?;
        Some((
            RecordKey::new(suite.aead, ck, civ, layout)?,
            RecordKey::new(suite.aead, sk, siv, layout)?,
        ))
    }

    /// The overhead a record of this key adds to its plaintext, not counting TLS 1.3's inner
    /// content type and padding.
    pub fn overhead(&self) -> usize {
        match self.layout {
            Layout::Tls12ExplicitNonce => 8 + TAG_LEN,
            _ => TAG_LEN,
        }
    }

    /// Open one record in place: `header` is its 5 bytes, `body` the ciphertext (explicit
    /// nonce and tag included). Returns the plaintext (TLS 1.3: inner plaintext, content type
    /// and padding still on), or `None` when it does not authenticate.
    pub fn open<'a>(&self, seq: u64, header: &[u8; 5], body: &'a mut [u8]) -> Option<&'a mut [u8]> {
        let mut nonce = self.iv;
        let xor_seq = |nonce: &mut [u8; 12]| {
            for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
                *n ^= s;
            }
        };
        match self.layout {
            Layout::Tls13 => {
                xor_seq(&mut nonce);
                let nonce = aead::Nonce::assume_unique_for_key(nonce);
                self.key
                    .open_in_place(nonce, aead::Aad::from(*header), body)
                    .ok()
            }
            Layout::Tls12Xor | Layout::Tls12ExplicitNonce => {
                let explicit = if self.layout == Layout::Tls12ExplicitNonce {
                    nonce[4..].copy_from_slice(body.get(..8)?);
                    8
                } else {
                    xor_seq(&mut nonce);
                    0
                };
                let plain_len = body.len().checked_sub(explicit + TAG_LEN)?;
                let plain_len = u16::try_from(plain_len).ok()?.to_be_bytes();
                let mut aad = [0u8; 13];
                aad[..8].copy_from_slice(&seq.to_be_bytes());
                aad[8..11].copy_from_slice(&header[..3]);
                aad[11..].copy_from_slice(&plain_len);
                let nonce = aead::Nonce::assume_unique_for_key(nonce);
                self.key
                    .open_within(nonce, aead::Aad::from(aad), body, explicit..)
                    .ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// RFC 8448 section 3 (simple 1-RTT handshake, TLS_AES_128_GCM_SHA256): the server
    /// handshake traffic secret and the key and IV the RFC derives from it.
    #[test]
    fn expand_label_matches_rfc8448() {
        let secret = unhex(
            "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc ded9 10 5d 42 be fd 59 d3
             91 ad 38",
        );
        assert_eq!(
            expand_label(Hash::Sha256, &secret, b"key", 16).unwrap(),
            unhex("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
        );
        assert_eq!(
            expand_label(Hash::Sha256, &secret, b"iv", 12).unwrap(),
            unhex("5d 31 3e b2 67 12 76 ee 13 00 0b 30")
        );
    }

    /// The TLS 1.2 PRF test vector for P_SHA256 published on the IETF TLS list (and used by
    /// many TLS libraries' tests): secret, label "test label", seed, 100 bytes out.
    #[test]
    fn prf_sha256_matches_the_published_vector() {
        let secret = unhex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = unhex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let out = prf(Hash::Sha256, &secret, b"test label", &[&seed], 100);
        assert_eq!(
            out,
            unhex(
                "e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52
                 d4 e6 1e db 5a 6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d
                 ef 17 ab fd 37 97 c0 56 4b ab 4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4
                 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01 87 34 7b 66"
            )
        );
    }

    #[test]
    fn suites_are_chosen_or_refused_with_a_reason() {
        let t12 = ProtocolVersion::TLS12;
        assert_eq!(
            suite(t12, CipherSuite(0xc02c)),
            Ok(Suite {
                aead: Aead::Aes256Gcm,
                hash: Hash::Sha384
            })
        );
        assert_eq!(
            suite(t12, CipherSuite(0xcca8)).map(|s| s.aead),
            Ok(Aead::Chacha20Poly1305)
        );
        // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256
        assert_eq!(suite(t12, CipherSuite(0xc027)), Err(Refusal::CbcMode));
        assert_eq!(
            suite(ProtocolVersion::TLS13, CipherSuite(0x1304)),
            Err(Refusal::Ccm)
        );
        assert_eq!(
            suite(ProtocolVersion::TLS10, CipherSuite(0xc013)),
            Err(Refusal::OldVersion)
        );
        // TLS_RSA_WITH_RC4_128_SHA
        assert_eq!(suite(t12, CipherSuite(0x0005)), Err(Refusal::Legacy));
        assert_eq!(suite(t12, CipherSuite(0xfefe)), Err(Refusal::Unknown));
    }
}
