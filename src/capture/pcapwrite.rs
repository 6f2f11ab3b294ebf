//! A tiny, dependency-free writer of classic pcap files (little-endian, micro- or nanosecond
//! timestamps). Used by `sniff --write`, the listener tests and test fixtures, where going
//! through libpcap's dumper would need a live or dead capture handle.

use std::io::{self, Write};

use crate::time::Timestamp;

/// Microsecond-resolution pcap magic number.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Nanosecond-resolution pcap magic number.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// Streams frames into a pcap file. Writes the 24-byte file header on creation and one 16-byte
/// record header plus the captured bytes per frame; nothing is buffered beyond what `W` buffers.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    snaplen: u32,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header. `linktype` is the LINKTYPE number (1 Ethernet, 101 raw IP, 113
    /// SLL, 276 SLL2...); frames longer than `snaplen` are cut to it (0 means no limit, but
    /// libpcap refuses records over 262144 bytes when reading). `nanos` selects nanosecond
    /// timestamps (magic `a1b23c4d`) instead of microseconds.
    pub fn new(mut w: W, linktype: u32, snaplen: u32, nanos: bool) -> io::Result<Self> {
        let magic = if nanos { MAGIC_NANOS } else { MAGIC_MICROS };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // 8..16: thiszone and sigfigs, both 0
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w, snaplen, nanos })
    }

    /// Append one frame. `orig_len` is its length on the wire; it is raised to the number of
    /// bytes written if smaller. Timestamps before 1970 or after 2106 are clamped to the range
    /// the format can hold.
    pub fn write_frame(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let mut caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        if self.snaplen != 0 {
            caplen = caplen.min(self.snaplen);
        }
        let bytes = data.get(..caplen as usize).unwrap_or(data);
        let secs = ts.0.div_euclid(1_000_000_000);
        let sub_nanos = ts.0.rem_euclid(1_000_000_000);
        let (secs, sub) = if secs < 0 {
            (0, 0)
        } else if secs > i64::from(u32::MAX) {
            (u32::MAX, if self.nanos { 999_999_999 } else { 999_999 })
        } else {
            let frac = if self.nanos {
                sub_nanos
            } else {
                sub_nanos / 1_000
            };
            (
                u32::try_from(secs).unwrap_or(u32::MAX),
                u32::try_from(frac).unwrap_or(0),
            )
        };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&sub.to_le_bytes());
        h[8..12].copy_from_slice(&caplen.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(caplen).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(bytes)
    }

    /// Flush the underlying writer (e.g. so a reader sees every frame so far).
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// The underlying writer, for inspection.
    pub fn get_ref(&self) -> &W {
        &self.w
    }

    /// Give back the underlying writer (not flushed: call [`PcapWriter::flush`] first if `W`
    /// buffers).
    pub fn into_inner(self) -> W {
        self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::CaptureFile;
    use crate::capture::frame::LinkType;

    fn read_back(bytes: &[u8]) -> (CaptureFile, tempfile::NamedTempFile) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        (CaptureFile::open(f.path()).unwrap(), f)
    }

    #[test]
    fn header_bytes_are_exact() {
        let w = PcapWriter::new(Vec::new(), 276, 65535, true).unwrap();
        assert_eq!(
            w.into_inner(),
            vec![
                0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0x14,
                0x01, 0, 0
            ]
        );
    }

    #[test]
    fn nanosecond_frames_read_back() {
        let mut w = PcapWriter::new(Vec::new(), 1, 65535, true).unwrap();
        w.write_frame(Timestamp(1_700_000_000_123_456_789), &[1, 2, 3], 3)
            .unwrap();
        w.write_frame(Timestamp(1_700_000_001_000_000_001), &[4; 100], 1514)
            .unwrap();
        let bytes = w.into_inner();
        assert_eq!(bytes.len(), 24 + 16 + 3 + 16 + 100);
        let (mut cf, _tmp) = read_back(&bytes);
        assert_eq!(cf.link_type(), LinkType::Ethernet);
        {
            let f = cf.next_frame().unwrap().unwrap();
            assert_eq!(f.ts, Timestamp(1_700_000_000_123_456_789));
            assert_eq!(f.data, &[1, 2, 3]);
            assert_eq!(f.orig_len, 3);
        }
        {
            let f = cf.next_frame().unwrap().unwrap();
            assert_eq!(f.ts, Timestamp(1_700_000_001_000_000_001));
            assert_eq!(f.data, &[4; 100][..]);
            assert_eq!(f.orig_len, 1514);
        }
        assert!(matches!(cf.next_frame(), Ok(None)));
    }

    #[test]
    fn microsecond_frames_drop_sub_micro_digits() {
        let mut w = PcapWriter::new(Vec::new(), 101, 65535, false).unwrap();
        w.write_frame(Timestamp(1_700_000_000_123_456_789), &[0x45; 20], 20)
            .unwrap();
        let bytes = w.into_inner();
        assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        // Record header: seconds then microseconds.
        assert_eq!(&bytes[24..28], &1_700_000_000u32.to_le_bytes());
        assert_eq!(&bytes[28..32], &123_456u32.to_le_bytes());
        let (mut cf, _tmp) = read_back(&bytes);
        assert_eq!(cf.link_type(), LinkType::Raw);
        let f = cf.next_frame().unwrap().unwrap();
        assert_eq!(f.ts, Timestamp(1_700_000_000_123_456_000));
    }

    #[test]
    fn snaplen_cuts_and_keeps_orig_len() {
        let mut w = PcapWriter::new(Vec::new(), 1, 64, true).unwrap();
        let data: Vec<u8> = (0..200u8).collect();
        w.write_frame(Timestamp(5), &data, 200).unwrap();
        // orig_len below the data length is raised to what was written.
        w.write_frame(Timestamp(6), &data[..10], 4).unwrap();
        let (mut cf, _tmp) = read_back(&w.into_inner());
        {
            let f = cf.next_frame().unwrap().unwrap();
            assert_eq!(f.data, &data[..64]);
            assert_eq!(f.orig_len, 200);
        }
        let f = cf.next_frame().unwrap().unwrap();
        assert_eq!(f.data.len(), 10);
        assert_eq!(f.orig_len, 10);
    }

    #[test]
    fn out_of_range_timestamps_are_clamped() {
        let mut w = PcapWriter::new(Vec::new(), 1, 0, true).unwrap();
        w.write_frame(Timestamp(-5), &[1], 1).unwrap();
        w.write_frame(Timestamp(i64::MAX), &[2], 1).unwrap();
        let bytes = w.into_inner();
        assert_eq!(&bytes[24..32], &[0; 8]);
        assert_eq!(&bytes[41..45], &u32::MAX.to_le_bytes());
        assert_eq!(&bytes[45..49], &999_999_999u32.to_le_bytes());
    }
}
