//! TCP sequence numbers: 32-bit values compared and subtracted in wrapping (RFC 793 / RFC 1982)
//! arithmetic, in one type for the tracker and the assembler.
//!
//! Modelled on smoltcp's `wire::tcp::SeqNumber`: `a - b` is the signed distance from `b` to `a`
//! (valid while the two are less than 2^31 apart), `a + n` moves forward modulo 2^32, and
//! `PartialOrd` says which of two numbers comes later in sequence space. Written here rather than
//! taken from smoltcp: that crate would bring a whole network stack for these few lines.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, Sub};

/// A TCP sequence (or acknowledgement) number.
///
/// Why a type: a plain `u32` compared with `<` is wrong across the 2^32 wrap; with this type every
/// comparison and distance in the TCP stage goes through the same wrapping rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The raw 32-bit value (for the time line and for tests).
    pub fn raw(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u32> for SeqNumber {
    fn from(v: u32) -> Self {
        SeqNumber(v)
    }
}

/// `seq + n`: `n` bytes further on, modulo 2^32.
impl Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }
}

/// `seq - n`: `n` bytes back, modulo 2^32.
impl Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(n))
    }
}

/// `a - b`: the signed distance from `b` to `a` (positive when `a` is later).
impl Sub for SeqNumber {
    type Output = i64;
    fn sub(self, b: SeqNumber) -> i64 {
        // Reinterpreting the wrapped difference as i32 is the point: it is the shorter way round.
        i64::from(self.0.wrapping_sub(b.0) as i32)
    }
}

/// Later in sequence space is greater. Not a total order (2^31 apart, both ways are as far), so
/// only `PartialOrd`; the comparison is antisymmetric except at exactly 2^31 apart.
impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        Some((*self - *other).cmp(&0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn distance_and_order_across_the_wrap() {
        let a = SeqNumber(u32::MAX - 1);
        let b = a + 5; // wraps to 3
        assert_eq!(b.raw(), 3);
        assert_eq!(b - a, 5);
        assert_eq!(a - b, -5);
        assert!(b > a);
        assert!(a < b);
        assert_eq!(a.partial_cmp(&b), Some(Ordering::Less));
        assert_eq!(b - 5, a);
        assert_eq!(a.partial_cmp(&a), Some(Ordering::Equal));
    }

    #[test]
    fn plain_order_without_wrap() {
        assert!(SeqNumber(100) < SeqNumber(101));
        assert_eq!(SeqNumber(100) - SeqNumber(7), 93);
        // Half the space apart: still the i32 reading (as the two old helpers had it).
        assert_eq!(SeqNumber(1 << 31) - SeqNumber(0), i64::from(i32::MIN));
    }

    proptest! {
        /// `(a + n) - a == n` for every step under 2^31, whatever the wrap; and the order agrees.
        #[test]
        fn add_then_sub_is_the_step(a in any::<u32>(), n in 0u32..(1 << 31)) {
            let a = SeqNumber(a);
            prop_assert_eq!((a + n) - a, i64::from(n));
            prop_assert_eq!(a - (a + n), -i64::from(n));
            prop_assert_eq!((a + n) > a, n > 0);
            prop_assert_eq!((a + n) - n, a);
        }
    }
}
