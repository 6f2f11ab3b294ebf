//! Unit tests of the decryptor.
