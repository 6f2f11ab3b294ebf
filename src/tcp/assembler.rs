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
//!
//! Design: the stream position is kept as a 64-bit offset (bytes delivered or declared missing so
//! far), so sequence wrap at 2^32 never matters; a sequence number is turned into an offset by its
//! signed 32-bit distance from the next expected sequence number. Data that starts exactly at the
//! next expected byte is handed out straight from the segment's payload (no copy, no allocation);
//! only data beyond a hole is copied into a per-direction ring buffer that spans at most
//! `max_buffered` bytes past the next expected byte (holes included), described by at most
//! `max_holes` blocks (plus transient extras), like smoltcp's fixed hole list. Work per segment
//! is proportional to its length plus the (bounded) number of blocks.
//!
//! Data more than [`FAR_AHEAD_LIMIT`] (1 GiB) ahead of the next expected byte is dropped and
//! counted (a corrupt or unrelated sequence number must not produce a gigantic gap); data ahead by
//! more than `max_buffered` but within that limit makes the earliest holes gaps until it fits.
//! Inconsistent retransmissions are detected against bytes still buffered; bytes already handed
//! out are not kept, so a retransmission of delivered bytes is counted but cannot be compared.

/// Data further than this ahead of the next expected byte is dropped (counted in
/// [`AssemblerStats::far_ahead_dropped`]) rather than buffered or turned into a gap.
pub const FAR_AHEAD_LIMIT: u64 = 1 << 30;

use super::seq::SeqNumber;

/// Smallest ring allocated for out-of-order bytes.
const MIN_RING: usize = 4096;

/// What the assembler hands out, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The next bytes of the stream.
    Data(&'a [u8]),
    /// The next `n` bytes of the stream are missing from the capture.
    Gap(u64),
}

/// Counters of one direction, for the connection summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Bytes handed out as [`Chunk::Data`].
    pub delivered_bytes: u64,
    /// Bytes handed out as [`Chunk::Gap`].
    pub gap_bytes: u64,
    /// Segments that carried bytes already seen (delivered or buffered).
    pub retransmissions: u64,
    /// Retransmitted segments whose bytes differed from buffered bytes that arrived first.
    pub inconsistent_retransmissions: u64,
    /// Keep-alive probes ignored (0 or 1 byte at next-1).
    pub keepalives: u64,
    /// Segments dropped for lying more than [`FAR_AHEAD_LIMIT`] ahead.
    pub far_ahead_dropped: u64,
    /// Gaps declared early because `max_buffered` or `max_holes` was reached.
    pub forced_gaps: u64,
}

/// A range of buffered stream offsets `[start, end)`: bytes in the buffer, or bytes known lost
/// (a frame cut by the snapshot length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    start: u64,
    end: u64,
    lost: bool,
}

/// Reassembler for one direction of a TCP connection.
#[derive(Debug, Clone)]
pub struct Assembler {
    /// Stream offset of the next byte to hand out.
    next: u64,
    /// Sequence number of the byte at `next`.
    next_seq: SeqNumber,
    /// Out-of-order bytes in a ring: stream offset `x` lives at `x % ring.len()`. Every
    /// buffered range lies within `[next, next + ring.len())`. The ring only grows (to a power
    /// of two, at most about twice `max_buffered`), so zeroing happens once per growth, never
    /// per segment, and nothing is ever moved on delivery.
    ring: Vec<u8>,
    /// Buffered ranges, sorted, non-overlapping, all starting after `next`.
    blocks: Vec<Block>,
    max_buffered: u64,
    max_holes: usize,
    stats: AssemblerStats,
}

/// Copy `data` into `ring` at stream offset `at` (position `at % ring.len()`, wrapping).
fn ring_write(ring: &mut [u8], at: u64, data: &[u8]) {
    let cap = ring.len();
    if cap == 0 || data.len() > cap {
        return;
    }
    let a = (at % cap as u64) as usize;
    let first = data.len().min(cap - a);
    let (d1, d2) = data.split_at(first);
    if let Some(dst) = ring.get_mut(a..a + first) {
        dst.copy_from_slice(d1);
    }
    if let Some(dst) = ring.get_mut(..d2.len()) {
        dst.copy_from_slice(d2);
    }
}

impl Assembler {
    /// A reassembler whose first stream byte has sequence number `start_seq` (ISN+1 when the
    /// SYN was seen, else the first segment's sequence number).
    pub fn new(start_seq: SeqNumber, max_buffered: usize, max_holes: usize) -> Self {
        Assembler {
            next: 0,
            next_seq: start_seq,
            ring: Vec::new(),
            blocks: Vec::new(),
            max_buffered: u64::try_from(max_buffered).unwrap_or(u64::MAX),
            max_holes,
            stats: AssemblerStats::default(),
        }
    }

    /// Sequence number of the next byte expected.
    pub fn next_seq(&self) -> SeqNumber {
        self.next_seq
    }

    /// Stream offset of the next byte expected (bytes delivered plus bytes declared missing).
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// True when out-of-order data (or known-lost ranges) wait behind a hole.
    pub fn has_buffered(&self) -> bool {
        !self.blocks.is_empty()
    }

    /// Bytes currently buffered beyond holes (lost ranges not counted).
    pub fn buffered_bytes(&self) -> u64 {
        self.blocks
            .iter()
            .filter(|b| !b.lost)
            .map(|b| b.end.saturating_sub(b.start))
            .sum()
    }

    /// Sequence number where the first buffered range starts, if any.
    pub fn first_buffered_seq(&self) -> Option<SeqNumber> {
        self.blocks.first().map(|b| self.seq_of(b.start))
    }

    /// Counters so far.
    pub fn stats(&self) -> &AssemblerStats {
        &self.stats
    }

    fn seq_of(&self, offset: u64) -> SeqNumber {
        // Truncation is the point: sequence numbers are offsets modulo 2^32.
        self.next_seq + offset.wrapping_sub(self.next) as u32
    }

    /// Add one segment: `payload` starts at `seq`, and `missing` more bytes (cut by the snapshot
    /// length) follow it. Whatever becomes contiguous is handed to `out` at once.
    pub fn insert(
        &mut self,
        seq: SeqNumber,
        payload: &[u8],
        missing: u32,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        let plen = payload.len() as u64;
        let mut missing = u64::from(missing);
        if plen == 0 && missing == 0 {
            return;
        }
        // Keep-alive probe: one old byte (or none) at next-1. Never overwrites anything.
        if plen <= 1 && missing == 0 && seq == self.next_seq - 1 {
            self.stats.keepalives += 1;
            return;
        }
        let rel = seq - self.next_seq;
        if rel > FAR_AHEAD_LIMIT as i64 {
            self.stats.far_ahead_dropped += 1;
            return;
        }
        let mut payload = payload;
        let mut retransmission = false;
        let start = if rel < 0 {
            // The first `old` bytes were already handed out.
            let old = rel.unsigned_abs();
            retransmission = true;
            if old >= plen.saturating_add(missing) {
                self.stats.retransmissions += 1;
                return;
            }
            let from_payload = old.min(plen);
            payload = payload.get(from_payload as usize..).unwrap_or(&[]);
            missing = missing.saturating_sub(old - from_payload);
            self.next
        } else {
            self.next.saturating_add(rel.unsigned_abs())
        };
        let total = (payload.len() as u64).saturating_add(missing);
        let end = start.saturating_add(total);

        // Overlap with buffered ranges: a retransmission; compare bytes where both are data.
        let mut inconsistent = false;
        for b in &self.blocks {
            if b.start >= end {
                break;
            }
            if b.end <= start {
                continue;
            }
            retransmission = true;
            let lo = b.start.max(start);
            let hi = b
                .end
                .min(end)
                .min(start.saturating_add(payload.len() as u64));
            if !b.lost && lo < hi {
                let new = payload
                    .get((lo - start) as usize..(hi - start) as usize)
                    .unwrap_or(&[]);
                let (o1, o2) = self.ring_slices(lo, hi);
                let (n1, n2) = new.split_at(o1.len().min(new.len()));
                if n1 != o1 || n2 != o2 {
                    inconsistent = true;
                }
            }
        }
        if retransmission {
            self.stats.retransmissions += 1;
        }
        if inconsistent {
            self.stats.inconsistent_retransmissions += 1;
        }

        self.place(start, payload, missing, out);
    }

    /// Put `payload` (then `missing` lost bytes) at stream offset `start >= next`.
    fn place(
        &mut self,
        mut start: u64,
        mut payload: &[u8],
        mut missing: u64,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        // Make room: the buffer may span at most `max_buffered` bytes past `next`.
        loop {
            if start <= self.next {
                // Re-clip what became old while gaps moved `next` forward (already counted).
                let old = self.next - start;
                let from_payload = old.min(payload.len() as u64);
                payload = payload.get(from_payload as usize..).unwrap_or(&[]);
                missing = missing.saturating_sub(old - from_payload);
                start = self.next;
                break;
            }
            let end = start
                .saturating_add(payload.len() as u64)
                .saturating_add(missing);
            if end - self.next <= self.max_buffered {
                break;
            }
            self.stats.forced_gaps += 1;
            match self.blocks.first() {
                Some(b) if b.start <= start => {
                    let to = b.start;
                    self.gap_to(to, out);
                    self.deliver_ready(out);
                }
                _ => self.gap_to(start, out),
            }
        }
        if payload.is_empty() && missing == 0 {
            return;
        }
        if start == self.next {
            self.place_in_order(payload, missing, out);
        } else {
            self.place_buffered(start, payload, missing);
            while self.blocks.len() > self.max_holes {
                let Some(to) = self.blocks.first().map(|b| b.start) else {
                    break;
                };
                self.stats.forced_gaps += 1;
                self.gap_to(to, out);
                self.deliver_ready(out);
            }
        }
    }

    /// The segment starts at `next`: hand its bytes out directly, except where buffered ranges
    /// (which arrived first) cover it.
    fn place_in_order(&mut self, payload: &[u8], missing: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        let start = self.next;
        let plen = payload.len() as u64;
        let end = start.saturating_add(plen).saturating_add(missing);
        while self.next < end {
            let here = self.next;
            let upto = match self.blocks.first() {
                Some(b) if b.start <= here => {
                    self.deliver_ready(out);
                    continue;
                }
                Some(b) => b.start.min(end),
                None => end,
            };
            // [here, upto) is ours: data part first, then lost part.
            let data_end = upto.min(start.saturating_add(plen));
            if here < data_end {
                if let Some(d) = payload.get((here - start) as usize..(data_end - start) as usize) {
                    self.stats.delivered_bytes += d.len() as u64;
                    out(Chunk::Data(d));
                }
                self.advance(data_end);
            }
            let here = self.next;
            if here < upto {
                self.stats.gap_bytes = self.stats.gap_bytes.saturating_add(upto - here);
                out(Chunk::Gap(upto - here));
                self.advance(upto);
            }
        }
        self.deliver_ready(out);
    }

    /// Copy the parts of the segment not yet buffered into the buffer and the block list.
    fn place_buffered(&mut self, start: u64, payload: &[u8], missing: u64) {
        let plen = payload.len() as u64;
        let data_end = start.saturating_add(plen);
        let end = data_end.saturating_add(missing);
        // Uncovered sub-ranges, found by walking the (few) blocks.
        let mut cursor = start;
        let mut idx = 0;
        while cursor < end {
            let (next_start, next_end) = match self.blocks.get(idx) {
                Some(b) if b.end <= cursor => {
                    idx += 1;
                    continue;
                }
                Some(b) => (b.start.max(cursor).min(end), b.end),
                None => (end, end),
            };
            if cursor < next_start {
                // Data part then lost part of [cursor, next_start).
                let d_hi = next_start.min(data_end);
                if cursor < d_hi {
                    self.write(
                        cursor,
                        payload.get((cursor - start) as usize..(d_hi - start) as usize),
                    );
                    self.blocks.insert(
                        idx,
                        Block {
                            start: cursor,
                            end: d_hi,
                            lost: false,
                        },
                    );
                    idx += 1;
                }
                let l_lo = cursor.max(data_end);
                if l_lo < next_start {
                    self.blocks.insert(
                        idx,
                        Block {
                            start: l_lo,
                            end: next_start,
                            lost: true,
                        },
                    );
                    idx += 1;
                }
            }
            cursor = next_end.max(next_start);
        }
        // Merge touching blocks of the same kind.
        self.blocks.dedup_by(|later, kept| {
            let touch = kept.end == later.start && kept.lost == later.lost;
            if touch {
                kept.end = later.end;
            }
            touch
        });
    }

    /// Store bytes at stream offset `at` (`at > next`, `at + len - next <= max_buffered`).
    fn write(&mut self, at: u64, data: Option<&[u8]>) {
        let Some(data) = data else { return };
        let need = at
            .saturating_add(data.len() as u64)
            .saturating_sub(self.next);
        if need > self.ring.len() as u64 {
            self.grow(need);
        }
        ring_write(&mut self.ring, at, data);
    }

    /// Enlarge the ring to hold `need` bytes past `next`, re-placing the buffered bytes.
    fn grow(&mut self, need: u64) {
        let need = usize::try_from(need).unwrap_or(usize::MAX).max(MIN_RING);
        let cap = need.checked_next_power_of_two().unwrap_or(need);
        let mut ring = vec![0u8; cap];
        for b in self.blocks.iter().filter(|b| !b.lost) {
            let (d1, d2) = self.ring_slices(b.start, b.end);
            ring_write(&mut ring, b.start, d1);
            ring_write(&mut ring, b.start.saturating_add(d1.len() as u64), d2);
        }
        self.ring = ring;
    }

    /// The ring's bytes for stream offsets `[lo, hi)`, as one or two slices (it may wrap).
    fn ring_slices(&self, lo: u64, hi: u64) -> (&[u8], &[u8]) {
        let cap = self.ring.len();
        if cap == 0 || hi <= lo || hi - lo > cap as u64 {
            return (&[], &[]);
        }
        let a = (lo % cap as u64) as usize;
        let n = (hi - lo) as usize;
        let first = n.min(cap - a);
        let d1 = self.ring.get(a..a + first).unwrap_or(&[]);
        let d2 = self.ring.get(..n - first).unwrap_or(&[]);
        (d1, d2)
    }

    /// Hand out every buffered range that starts at `next`.
    fn deliver_ready(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(&b) = self.blocks.first() {
            if b.start > self.next {
                break;
            }
            self.blocks.remove(0);
            if b.end <= self.next {
                continue;
            }
            let lo = b.start.max(self.next);
            if b.lost {
                self.stats.gap_bytes = self.stats.gap_bytes.saturating_add(b.end - lo);
                out(Chunk::Gap(b.end - lo));
            } else {
                let (d1, d2) = self.ring_slices(lo, b.end);
                let n = (d1.len() + d2.len()) as u64;
                for d in [d1, d2] {
                    if !d.is_empty() {
                        out(Chunk::Data(d));
                    }
                }
                self.stats.delivered_bytes += n;
            }
            self.advance(b.end);
        }
    }

    /// Declare `[next, to)` missing (nothing may be buffered there).
    fn gap_to(&mut self, to: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        if to > self.next {
            // Gap sizes come from sequence numbers (up to 4 GiB a segment): saturate.
            self.stats.gap_bytes = self.stats.gap_bytes.saturating_add(to - self.next);
            out(Chunk::Gap(to - self.next));
            self.advance(to);
        }
    }

    fn advance(&mut self, to: u64) {
        let delta = to.saturating_sub(self.next);
        self.next = self.next.saturating_add(delta);
        // Truncation is the point: sequence numbers are offsets modulo 2^32.
        self.next_seq = self.next_seq + delta as u32;
    }

    /// The peer acknowledged everything before `seq`: bytes up to it that the capture never saw
    /// become gaps (buffered data in between is delivered). Ignored when `seq` is not ahead or is
    /// more than [`FAR_AHEAD_LIMIT`] ahead. Returns the gap bytes declared.
    pub fn skip_to(&mut self, seq: SeqNumber, out: &mut dyn FnMut(Chunk<'_>)) -> u64 {
        let rel = seq - self.next_seq;
        if rel <= 0 || rel > FAR_AHEAD_LIMIT as i64 {
            return 0;
        }
        let target = self.next.saturating_add(rel.unsigned_abs());
        let before = self.stats.gap_bytes;
        while self.next < target {
            match self.blocks.first() {
                Some(b) if b.start < target => {
                    let to = b.start;
                    self.gap_to(to, out);
                    self.deliver_ready(out);
                }
                _ => self.gap_to(target, out),
            }
        }
        self.stats.gap_bytes.saturating_sub(before)
    }

    /// Deliver everything buffered, declaring the holes before it as gaps (end of stream).
    pub fn flush(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(to) = self.blocks.first().map(|b| b.start) {
            self.gap_to(to, out);
            self.deliver_ready(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Collected output: bytes with gaps marked, plus the raw chunk list.
    #[derive(Default, Debug)]
    struct Sink {
        data: Vec<u8>,
        gaps: Vec<(usize, u64)>,
        chunks: usize,
    }

    impl Sink {
        fn push(&mut self, c: Chunk<'_>) {
            self.chunks += 1;
            match c {
                Chunk::Data(d) => self.data.extend_from_slice(d),
                Chunk::Gap(n) => self.gaps.push((self.data.len(), n)),
            }
        }
    }

    fn ins(a: &mut Assembler, s: &mut Sink, seq: u32, p: &[u8]) {
        a.insert(SeqNumber(seq), p, 0, &mut |c| s.push(c));
    }

    fn big() -> Assembler {
        Assembler::new(SeqNumber(1000), 1 << 20, 64)
    }

    #[test]
    fn in_order() {
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1000, b"hello ");
        ins(&mut a, &mut s, 1006, b"world");
        assert_eq!(s.data, b"hello world");
        assert_eq!(a.next_seq(), SeqNumber(1011));
        assert_eq!(a.stats().retransmissions, 0);
        assert!(s.gaps.is_empty());
    }

    #[test]
    fn out_of_order_is_held_until_the_hole_fills() {
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1006, b"world");
        ins(&mut a, &mut s, 1011, b"!");
        assert!(s.data.is_empty());
        assert!(a.has_buffered());
        assert_eq!(a.buffered_bytes(), 6);
        assert_eq!(a.first_buffered_seq(), Some(SeqNumber(1006)));
        ins(&mut a, &mut s, 1000, b"hello ");
        assert_eq!(s.data, b"hello world!");
        assert!(!a.has_buffered());
        assert_eq!(a.next_seq(), SeqNumber(1012));
    }

    #[test]
    fn overlap_first_arrival_wins_consistent_and_inconsistent() {
        // Buffered "BCDE" at 1001..1005; a segment "aXYZe" at 1000..1005 overlaps it with
        // different bytes: the buffered ones win and one inconsistent retransmission counts.
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1001, b"BCDE");
        ins(&mut a, &mut s, 1000, b"aXYZEf");
        assert_eq!(s.data, b"aBCDEf");
        assert_eq!(a.stats().retransmissions, 1);
        assert_eq!(a.stats().inconsistent_retransmissions, 1);

        // Consistent overlap: counted as a retransmission, not inconsistent.
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1002, b"CD");
        ins(&mut a, &mut s, 1001, b"BCDE");
        ins(&mut a, &mut s, 1000, b"A");
        assert_eq!(s.data, b"ABCDE");
        assert_eq!(a.stats().retransmissions, 1);
        assert_eq!(a.stats().inconsistent_retransmissions, 0);
    }

    #[test]
    fn retransmission_of_delivered_bytes_is_counted_and_dropped() {
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1000, b"abcdef");
        ins(&mut a, &mut s, 1000, b"abc");
        ins(&mut a, &mut s, 1003, b"XYZgh"); // "def" old (different, cannot compare), "gh" new
        assert_eq!(s.data, b"abcdefgh");
        assert_eq!(a.stats().retransmissions, 2);
        assert_eq!(a.stats().inconsistent_retransmissions, 0);
    }

    #[test]
    fn keepalive_probe_is_ignored() {
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1000, b"abc");
        ins(&mut a, &mut s, 1002, b"Z"); // seq = next-1, one garbage byte
        ins(&mut a, &mut s, 1002, b""); // zero-length probe
        ins(&mut a, &mut s, 1003, b"d");
        assert_eq!(s.data, b"abcd");
        assert_eq!(a.stats().keepalives, 1);
        assert_eq!(a.stats().retransmissions, 0);
    }

    #[test]
    fn wraps_at_2_pow_32() {
        let mut a = Assembler::new(SeqNumber(u32::MAX - 2), 1 << 20, 8);
        let mut s = Sink::default();
        // "abc" sits at MAX-2..=MAX, "d" at 0 and "ef" at 1..=2 (after the wrap); "ef" comes first.
        ins(&mut a, &mut s, 1, b"ef");
        ins(&mut a, &mut s, u32::MAX - 2, b"abc");
        assert_eq!(s.data, b"abc");
        ins(&mut a, &mut s, 0, b"d");
        assert_eq!(s.data, b"abcdef");
        assert_eq!(a.next_seq(), SeqNumber(3));
        assert_eq!(a.next_offset(), 6);
    }

    #[test]
    fn skip_to_declares_gap_and_delivers_buffered() {
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1010, b"later"); // 1010..1015 buffered, hole 1000..1010
        assert_eq!(a.skip_to(SeqNumber(1020), &mut |c| s.push(c)), 15);
        // gap of 10, then "later", then gap of 5 (1015..1020)
        assert_eq!(s.data, b"later");
        assert_eq!(s.gaps, vec![(0, 10), (5, 5)]);
        assert_eq!(a.next_seq(), SeqNumber(1020));
        // Not ahead: nothing.
        assert_eq!(a.skip_to(SeqNumber(1019), &mut |c| s.push(c)), 0);
        assert_eq!(a.stats().gap_bytes, 15);
    }

    #[test]
    fn flush_turns_holes_into_gaps() {
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1000, b"ab");
        ins(&mut a, &mut s, 1005, b"fg");
        ins(&mut a, &mut s, 1010, b"k");
        a.flush(&mut |c| s.push(c));
        assert_eq!(s.data, b"abfgk");
        assert_eq!(s.gaps, vec![(2, 3), (4, 3)]);
        assert!(!a.has_buffered());
    }

    #[test]
    fn truncated_segment_missing_bytes_become_a_gap() {
        let mut a = big();
        let mut s = Sink::default();
        a.insert(SeqNumber(1000), b"abc", 7, &mut |c| s.push(c));
        ins(&mut a, &mut s, 1010, b"xyz");
        assert_eq!(s.data, b"abcxyz");
        assert_eq!(s.gaps, vec![(3, 7)]);
        // Out of order truncated frame: lost range held in order.
        let mut a = big();
        let mut s = Sink::default();
        a.insert(SeqNumber(1004), b"ef", 2, &mut |c| s.push(c)); // data 1004..1006, lost 1006..1008
        ins(&mut a, &mut s, 1008, b"ij");
        ins(&mut a, &mut s, 1000, b"abcd");
        assert_eq!(s.data, b"abcdefij");
        assert_eq!(s.gaps, vec![(6, 2)]);
        assert_eq!(a.stats().gap_bytes, 2);
    }

    #[test]
    fn hole_limit_forces_earliest_gap() {
        let mut a = Assembler::new(SeqNumber(0), 1 << 20, 2);
        let mut s = Sink::default();
        ins(&mut a, &mut s, 10, b"b");
        ins(&mut a, &mut s, 20, b"c");
        assert!(s.data.is_empty());
        ins(&mut a, &mut s, 30, b"d"); // third hole: gap 0..10, deliver "b"
        assert_eq!(s.data, b"b");
        assert_eq!(s.gaps, vec![(0, 10)]);
        assert_eq!(a.next_seq(), SeqNumber(11));
        assert_eq!(a.stats().forced_gaps, 1);
    }

    #[test]
    fn buffer_limit_forces_earliest_gap() {
        let mut a = Assembler::new(SeqNumber(0), 100, 32);
        let mut s = Sink::default();
        ins(&mut a, &mut s, 50, &[7; 10]); // span 60 fits
        assert!(s.data.is_empty());
        ins(&mut a, &mut s, 95, &[8; 10]); // would span 105 > 100: gap 0..50, deliver 50..60
        assert_eq!(s.gaps, vec![(0, 50)]);
        assert_eq!(s.data, vec![7; 10]);
        assert_eq!(a.next_seq(), SeqNumber(60));
        assert!(a.has_buffered()); // 95..105 buffered behind hole 60..95
                                   // Far beyond the buffer with nothing before it: gap straight to it, delivered directly.
        let mut a = Assembler::new(SeqNumber(0), 100, 32);
        let mut s = Sink::default();
        ins(&mut a, &mut s, 5000, b"zz");
        assert_eq!(s.gaps, vec![(0, 5000)]);
        assert_eq!(s.data, b"zz");
    }

    #[test]
    fn far_ahead_segment_is_dropped() {
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1000u32.wrapping_add((1 << 30) + 1), b"x");
        assert_eq!(a.stats().far_ahead_dropped, 1);
        assert!(!a.has_buffered());
        assert_eq!(s.chunks, 0);
        ins(&mut a, &mut s, 1000, b"a");
        assert_eq!(s.data, b"a");
    }

    #[test]
    fn in_order_segment_covering_buffered_data_delivers_first_arrival() {
        let mut a = big();
        let mut s = Sink::default();
        ins(&mut a, &mut s, 1003, b"DE");
        ins(&mut a, &mut s, 1008, b"IJ");
        ins(&mut a, &mut s, 1000, b"abcxxfghxxk");
        assert_eq!(s.data, b"abcDEfghIJk");
        assert_eq!(a.stats().inconsistent_retransmissions, 1);
        assert!(!a.has_buffered());
        assert_eq!(a.next_seq(), SeqNumber(1011));
    }

    #[test]
    fn buffered_bytes_survive_ring_wrap_and_growth() {
        let stream: Vec<u8> = (0..9000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut a = Assembler::new(SeqNumber(0), 100_000, 8);
        let mut s = Sink::default();
        ins(&mut a, &mut s, 0, &stream[..4000]);
        ins(&mut a, &mut s, 4090, &stream[4090..4110]); // crosses the 4096-byte ring's end
        ins(&mut a, &mut s, 4150, &stream[4150..8300]); // ring grows, bytes re-placed
        ins(&mut a, &mut s, 4095, &stream[4095..4100]); // overlap, same bytes: consistent
        assert_eq!(s.data.len(), 4000);
        ins(&mut a, &mut s, 4000, &stream[4000..4090]);
        ins(&mut a, &mut s, 4110, &stream[4110..4150]);
        ins(&mut a, &mut s, 8300, &stream[8300..]);
        assert_eq!(s.data, stream);
        assert_eq!(a.stats().retransmissions, 1);
        assert_eq!(a.stats().inconsistent_retransmissions, 0);
        assert!(s.gaps.is_empty());
    }

    /// Cut `stream` at random points, possibly several times (overlapping re-segmentation).
    /// (stream, isn, segments as offset ranges, indexes of segments to duplicate)
    type Case = (Vec<u8>, u32, Vec<(usize, usize)>, Vec<usize>);

    fn segments_strategy() -> impl Strategy<Value = Case> {
        (1usize..12_000, any::<u32>(), 1usize..4).prop_flat_map(|(len, isn, passes)| {
            (
                proptest::collection::vec(any::<u8>(), len),
                Just(isn),
                proptest::collection::vec(proptest::collection::vec(1usize..300, 1..40), passes),
                proptest::collection::vec(any::<usize>(), 0..20),
            )
                .prop_map(move |(data, isn, cuts, dups)| {
                    let mut segs = Vec::new();
                    for pass in cuts {
                        let mut pos = 0;
                        let mut i = 0;
                        while pos < len {
                            let n = pass[i % pass.len()].min(len - pos);
                            segs.push((pos, pos + n));
                            pos += n;
                            i += 1;
                        }
                    }
                    (data, isn, segs, dups)
                })
        })
    }

    proptest! {
        #[test]
        fn any_segmentation_reorder_and_duplication_reassembles_exactly(
            (data, isn, mut segs, dups) in segments_strategy(),
            shuffle_seed in any::<u64>(),
            wrap in any::<bool>(),
        ) {
            // Start near 2^32 half the time so the stream crosses the wrap.
            let isn = if wrap { u32::MAX - (data.len() as u32 / 2) } else { isn };
            for d in &dups {
                let s = segs[d % segs.len()];
                segs.push(s);
            }
            // Deterministic shuffle.
            let mut x = shuffle_seed | 1;
            for i in (1..segs.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                segs.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut a = Assembler::new(SeqNumber(isn), 1 << 20, 10_000);
            let mut s = Sink::default();
            for (lo, hi) in segs {
                a.insert(SeqNumber(isn.wrapping_add(lo as u32)), &data[lo..hi], 0, &mut |c| s.push(c));
            }
            prop_assert_eq!(&s.data, &data);
            prop_assert!(s.gaps.is_empty());
            prop_assert!(!a.has_buffered());
            prop_assert_eq!(a.stats().inconsistent_retransmissions, 0);
        }

        #[test]
        fn with_drops_and_tight_limits_data_plus_gaps_is_the_stream(
            (data, isn, mut segs, _dups) in segments_strategy(),
            shuffle_seed in any::<u64>(),
            drop_mask in any::<u64>(),
            max_buffered in 0usize..2000,
            max_holes in 0usize..6,
        ) {
            let mut x = shuffle_seed | 1;
            for i in (1..segs.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                segs.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut a = Assembler::new(SeqNumber(isn), max_buffered, max_holes);
            // Record (offset, data) pieces to check each byte against the original.
            let mut pos = 0u64;
            let mut ok = true;
            let mut delivered = 0u64;
            let mut gaps = 0u64;
            let mut check = |c: Chunk<'_>| match c {
                Chunk::Data(d) => {
                    let lo = pos as usize;
                    if data.get(lo..lo + d.len()) != Some(d) { ok = false; }
                    pos += d.len() as u64;
                    delivered += d.len() as u64;
                }
                Chunk::Gap(n) => { pos += n; gaps += n; }
            };
            for (i, (lo, hi)) in segs.into_iter().enumerate() {
                if drop_mask & (1 << (i % 64)) != 0 { continue; }
                a.insert(SeqNumber(isn.wrapping_add(lo as u32)), &data[lo..hi], 0, &mut check);
            }
            // The peer's final ACK covers the whole stream.
            a.skip_to(SeqNumber(isn.wrapping_add(data.len() as u32)), &mut check);
            a.flush(&mut check);
            prop_assert!(ok);
            prop_assert_eq!(delivered + gaps, data.len() as u64);
            prop_assert_eq!(a.stats().delivered_bytes, delivered);
            prop_assert_eq!(a.stats().gap_bytes, gaps);
        }
    }
}
