use std::collections::BTreeSet;
use std::io::Write;

use super::writer::ZERO_AHEAD;
use super::*;
use crate::isapi::{PartHeader, PartSink};

fn hdr(index: usize, name: &str, filename: Option<&str>, ct: &str) -> PartHeader {
    PartHeader {
        index,
        name: Some(name.into()),
        filename: filename.map(str::to_string),
        content_type: Some(ct.into()),
        content_length: None,
    }
}

// 2024-02-29 12:34:56 UTC
const T: Timestamp = Timestamp(1_709_210_096_000_000_000);

/// Options with no segment prepared ahead (zeros written in line, the fallback): the segment
/// names and sizes these tests pin then do not depend on a background thread's timing.
/// `small_events_go_to_segments_zeroed_ahead_by_the_preparer` tests the preparer.
fn inline_opts() -> StoreOptions {
    StoreOptions {
        prepared_bytes: 0,
        ..StoreOptions::default()
    }
}

/// Store `body` as one plain XML event of type VMD from 10.0.0.9 and wait for its commit.
fn commit_vmd(store: &Store, body: &[u8]) -> StoredEvent {
    let mut st = store.begin(T, "10.0.0.9:1").unwrap();
    st.write_body(Some("application/xml"), body);
    store
        .commit_wait(
            st.seal(Default::default(), Some("VMD"), "10.0.0.9")
                .unwrap(),
        )
        .unwrap()
}

/// Store `body` (of content type `ct`) as one event received at `t` from 10.0.0.5 and wait for
/// its commit.
fn commit_at(store: &Store, t: Timestamp, ct: &str, body: &[u8]) -> StoredEvent {
    let mut st = store.begin(t, "10.0.0.5:5000").unwrap();
    st.write_body(Some(ct), body);
    store
        .commit_wait(st.seal(Default::default(), None, "10.0.0.5").unwrap())
        .unwrap()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn multipart_event_is_committed_with_exact_bytes_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
    st.part_start(&hdr(0, "anpr.xml", None, "application/xml"));
    st.part_data(0, b"<a>");
    st.part_data(0, b"</a>");
    st.part_end(0, 7);
    st.part_start(&hdr(
        1,
        "licensePlatePicture.jpg",
        Some("licensePlatePicture.jpg"),
        "image/jpeg",
    ));
    st.part_data(1, &[0xff, 0xd8, 0x00, 0xff, 0xd9]);
    st.part_end(1, 5);
    let mut meta = serde_json::Map::new();
    meta.insert("client".into(), "10.0.0.5:5000".into());
    let sealed = st.seal(meta, Some("ANPR"), "10.0.0.5").unwrap();
    let ev = store.commit_wait(sealed).unwrap();
    assert_eq!(ev.seq, 1);
    assert_eq!(ev.rel_dir, "2024-02-29/00000001-10.0.0.5-ANPR");
    assert_eq!(
        ev.segment,
        dir.path().join("2024-02-29/events-00000001.seg")
    );
    assert_eq!(ev.read("p0-anpr.xml").unwrap(), b"<a></a>");
    assert_eq!(
        ev.read("p1-licensePlatePicture.jpg").unwrap(),
        [0xff, 0xd8, 0x00, 0xff, 0xd9]
    );
    let meta: serde_json::Value = serde_json::from_slice(&ev.read("meta.json").unwrap()).unwrap();
    assert_eq!(meta["client"], "10.0.0.5:5000");
    assert_eq!(meta["seq"], 1);
    let idx = read_index(dir.path()).unwrap();
    assert_eq!(idx.len(), 1);
    assert_eq!(idx[0].dir, "2024-02-29/00000001-10.0.0.5-ANPR");
    assert_eq!(idx[0].segment, "2024-02-29/events-00000001.seg");
    let names: Vec<_> = idx[0]
        .files
        .iter()
        .map(|f| (f.file.as_str(), f.part))
        .collect();
    assert_eq!(
        names,
        [
            ("meta.json", None),
            ("p0-anpr.xml", Some(0)),
            ("p1-licensePlatePicture.jpg", Some(1))
        ]
    );
    assert_eq!(idx[0].files[1].bytes, 7);
    assert_eq!(idx[0].files[2].bytes, 5);
    assert_eq!(
        read_file(dir.path(), &idx[0], &idx[0].files[2]).unwrap(),
        [0xff, 0xd8, 0x00, 0xff, 0xd9]
    );
    store.close();
    // One segment, the index, the (empty) spool: no file per event.
    assert_eq!(
        files_under(dir.path()),
        ["2024-02-29/events-00000001.seg", "index.jsonl"]
    );
}

#[test]
fn many_events_share_one_segment_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    let mut evs = Vec::new();
    for i in 0..50u32 {
        let body: Vec<u8> = (0..(i * 37 % 500)).map(|b| (b ^ i) as u8).collect();
        let ev = commit_vmd(&store, &body);
        evs.push((ev, body));
    }
    for (ev, body) in &evs {
        assert_eq!(&ev.read("body.xml").unwrap(), body, "seq {}", ev.seq);
    }
    let segs: BTreeSet<_> = evs.iter().map(|(e, _)| e.segment.clone()).collect();
    assert_eq!(segs.len(), 1);
    store.close();
}

#[test]
fn large_bodies_spill_to_the_spool_and_are_stored_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        spill_bytes: 1000,
        ..inline_opts()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let pic: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
    st.part_start(&hdr(0, "a.xml", None, "application/xml"));
    st.part_data(0, b"<x/>");
    st.part_end(0, 4);
    st.part_start(&hdr(1, "pic.jpg", Some("pic.jpg"), "image/jpeg"));
    for c in pic.chunks(333) {
        st.part_data(1, c);
    }
    st.part_end(1, pic.len() as u64);
    assert!(st.spilled());
    assert_eq!(fs::read_dir(dir.path().join(SPOOL_DIR)).unwrap().count(), 1);
    let ev = store
        .commit_wait(st.seal(Default::default(), None, "10.0.0.5").unwrap())
        .unwrap();
    assert_eq!(ev.read("p0-a.xml").unwrap(), b"<x/>");
    assert_eq!(ev.read("p1-pic.jpg").unwrap(), pic);
    // The spool file is gone once the event is committed.
    assert_eq!(fs::read_dir(dir.path().join(SPOOL_DIR)).unwrap().count(), 0);
    // A spilled event dropped mid-way leaves no spool file either.
    let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
    st.write_body(None, &pic);
    assert!(st.spilled());
    drop(st);
    assert_eq!(fs::read_dir(dir.path().join(SPOOL_DIR)).unwrap().count(), 0);
    store.close();
}

#[test]
fn segments_roll_by_size_and_date() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        segment_bytes: 2000,
        ..inline_opts()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let mut segs = BTreeSet::new();
    for i in 0..10 {
        let t = if i < 8 {
            T
        } else {
            Timestamp(T.0 + 86_400_000_000_000)
        };
        let mut st = store.begin(t, "1.2.3.4:5").unwrap();
        st.write_body(None, &[b'x'; 300]);
        let ev = store
            .commit_wait(st.seal(Default::default(), None, "1.2.3.4").unwrap())
            .unwrap();
        assert_eq!(ev.read("body.bin").unwrap(), [b'x'; 300]);
        segs.insert(ev.segment.strip_prefix(dir.path()).unwrap().to_owned());
    }
    let segs: Vec<String> = segs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    // ~450 bytes per event (body + meta.json): 2000 bytes hold 5 events.
    assert!(segs.len() >= 3, "{segs:?}");
    assert!(
        segs.iter().any(|s| s.starts_with("2024-03-01/")),
        "{segs:?}"
    );
    store.close();
}

#[test]
fn hostile_names_stay_inside_the_store_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
    st.part_start(&hdr(0, "x", Some("../../../../etc/passwd"), "image/jpeg"));
    st.part_data(0, b"evil");
    st.part_end(0, 4);
    st.part_start(&hdr(1, "x", Some("/abs/path.jpg"), "image/jpeg"));
    st.part_data(1, b"abs");
    st.part_end(1, 3);
    let ev = store
        .commit_wait(
            st.seal(Default::default(), Some("../VMD"), "10.0.0.5/..")
                .unwrap(),
        )
        .unwrap();
    assert_eq!(ev.rel_dir, "2024-02-29/00000001-10.0.0.5_..-_VMD");
    let files: Vec<&str> = ev.files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(
        files,
        ["meta.json", "p0-_.._.._.._etc_passwd", "p1-_abs_path.jpg"]
    );
    store.close();
    let out = tempfile::tempdir().unwrap();
    let sub = out.path().join("export");
    assert_eq!(export(dir.path(), &sub, |_| true).unwrap(), (1, 3));
    assert_eq!(
        fs::read(sub.join("2024-02-29/00000001-10.0.0.5_..-_VMD/p0-_.._.._.._etc_passwd")).unwrap(),
        b"evil"
    );
    // Everything written is under the export directory.
    assert_eq!(files_under(out.path()).len(), 3);
    assert!(files_under(out.path())
        .iter()
        .all(|f| f.starts_with("export/2024-02-29/")));
}

#[test]
fn a_doctored_index_cannot_make_export_leave_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    let mut st = store.begin(T, "1.2.3.4:5").unwrap();
    st.write_body(None, b"abc");
    store
        .commit_wait(st.seal(Default::default(), None, "1.2.3.4").unwrap())
        .unwrap();
    store.close();
    let idx = fs::read_to_string(dir.path().join(INDEX_FILE)).unwrap();
    let mut line: serde_json::Value = serde_json::from_str(idx.trim()).unwrap();
    line["dir"] = "../../escaped".into();
    line["files"][1]["file"] = "../../also".into();
    fs::write(dir.path().join(INDEX_FILE), format!("{line}\n")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let sub = out.path().join("x");
    export(dir.path(), &sub, |_| true).unwrap();
    let all = files_under(out.path());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|f| f.starts_with("x/")), "{all:?}");
}

#[test]
fn plain_body_and_sequence_continues_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), inline_opts()).unwrap();
        for _ in 0..3 {
            let mut st = store.begin(T, "[fd00::1]:80").unwrap();
            st.write_body(Some("application/json"), b"{\"a\":");
            st.write_body(Some("application/json"), b"1}");
            let ev = store
                .commit_wait(st.seal(Default::default(), None, "fd00::1").unwrap())
                .unwrap();
            assert_eq!(ev.read("body.json").unwrap(), b"{\"a\":1}");
        }
        store.close();
    }
    // A crash left a spool file, garbage after the last event of the segment, and a torn index
    // line.
    fs::write(dir.path().join(SPOOL_DIR).join("00000009.tmp"), b"junk").unwrap();
    let seg = dir.path().join("2024-02-29/events-00000001.seg");
    let seg_len = fs::metadata(&seg).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"half an event").unwrap();
    drop(f);
    let mut idx = OpenOptions::new()
        .append(true)
        .open(dir.path().join(INDEX_FILE))
        .unwrap();
    idx.write_all(b"{\"seq\":4,\"ti").unwrap();
    drop(idx);
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    assert_eq!(store.next_seq(), 4);
    assert_eq!(fs::read_dir(dir.path().join(SPOOL_DIR)).unwrap().count(), 0);
    let text = fs::read_to_string(dir.path().join(INDEX_FILE)).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.ends_with('\n'));
    let st = store.begin(T, "1.2.3.4:1").unwrap();
    let ev = store
        .commit_wait(st.seal(Default::default(), Some("IO"), "1.2.3.4").unwrap())
        .unwrap();
    assert_eq!(ev.rel_dir, "2024-02-29/00000004-1.2.3.4-IO");
    // A new segment: nothing is appended after the garbage.
    assert_eq!(
        ev.segment,
        dir.path().join("2024-02-29/events-00000004.seg")
    );
    assert_eq!(fs::metadata(&seg).unwrap().len(), seg_len + 13);
    let idx = read_index(dir.path()).unwrap();
    assert_eq!(idx.len(), 4);
    for line in &idx {
        for f in &line.files {
            assert_eq!(
                read_file(dir.path(), line, f).unwrap().len() as u64,
                f.bytes
            );
        }
    }
    store.close();
}

#[test]
fn duplicate_part_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
    // The same index sent twice would give the same file name: the second is refused and the
    // event is not acknowledged.
    st.part_start(&hdr(0, "a.jpg", None, "image/jpeg"));
    st.part_end(0, 0);
    st.part_start(&hdr(0, "a.jpg", None, "image/jpeg"));
    assert!(
        matches!(st.error(), Some(StagingError::DuplicatePart { file }) if file.starts_with("p0-")),
        "{:?}",
        st.error()
    );
    let err = st.seal(Default::default(), None, "x").err().unwrap();
    assert!(matches!(
        err.get_ref().and_then(|e| e.downcast_ref::<StagingError>()),
        Some(StagingError::DuplicatePart { .. })
    ));
    store.close();
}

#[test]
fn data_for_a_part_that_is_not_current_is_not_misfiled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
    st.part_start(&hdr(0, "a.xml", None, "application/xml"));
    st.part_data(0, b"<a/>");
    st.part_end(0, 4);
    st.part_data(0, b"late");
    st.part_start(&hdr(1, "b.jpg", None, "image/jpeg"));
    st.part_data(0, b"wrong");
    st.part_data(1, b"jpg");
    st.part_end(1, 3);
    let ev = store
        .commit_wait(st.seal(Default::default(), None, "x").unwrap())
        .unwrap();
    assert_eq!(ev.read("p0-a.xml").unwrap(), b"<a/>");
    assert_eq!(ev.read("p1-b.jpg").unwrap(), b"jpg");
    store.close();
}

#[test]
fn unwritable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plainfile");
    fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("sub"), inline_opts()).err().unwrap();
    assert!(err.to_string().contains("plainfile"), "{err}");
}

/// Every event of `want` (seq -> body) is in the store's index exactly once, with its exact body.
fn assert_index_holds(dir: &Path, want: &std::collections::BTreeMap<u64, Vec<u8>>) {
    let idx = read_index(dir).unwrap();
    let seqs: Vec<u64> = idx.iter().map(|l| l.seq).collect();
    assert_eq!(
        seqs,
        want.keys().copied().collect::<Vec<_>>(),
        "each event once, in commit order"
    );
    for line in &idx {
        let body = line.files.iter().find(|f| f.file == "body.xml").unwrap();
        assert_eq!(&read_file(dir, line, body).unwrap(), &want[&line.seq]);
        let meta = line.files.iter().find(|f| f.file == META_FILE).unwrap();
        let meta: serde_json::Value =
            serde_json::from_slice(&read_file(dir, line, meta).unwrap()).unwrap();
        assert_eq!(meta["seq"], line.seq);
    }
}

#[test]
fn index_lost_or_damaged_by_a_machine_crash_is_rebuilt_from_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = std::collections::BTreeMap::new();
    {
        let store = Store::open(dir.path(), inline_opts()).unwrap();
        for i in 0..20u32 {
            let body: Vec<u8> = (0..(100 + i * 97 % 3000)).map(|b| (b ^ i) as u8).collect();
            let ev = commit_vmd(&store, &body);
            want.insert(ev.seq, body);
        }
        store.close();
    }
    let index = dir.path().join(INDEX_FILE);
    let full = fs::read(&index).unwrap();
    let seg = dir.path().join("2024-02-29/events-00000001.seg");
    assert_index_holds(dir.path(), &want);

    // 1. The index lost its last lines and the last one left is torn; the segment ends with an
    //    unfinished record (never acknowledged: ignored).
    let cut = full
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(5)
        .unwrap()
        .0
        + 40;
    fs::write(&index, &full[..cut]).unwrap();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"ASEV\x20\x00\x00\x00\x00\x00\x00\x00{\"seq\":99")
        .unwrap();
    drop(f);
    assert_index_holds(dir.path(), &want);
    Store::open(dir.path(), inline_opts()).unwrap().close();
    let text = fs::read_to_string(&index).unwrap();
    assert_eq!(
        text.lines().count(),
        20,
        "the missing lines were written back"
    );
    assert_index_holds(dir.path(), &want);

    // 2. A zeroed stretch in the middle of the index (pages that never reached the disk).
    let mut damaged = full.clone();
    let (a, b) = (full.len() / 3, full.len() / 2);
    damaged[a..b].fill(0);
    fs::write(&index, &damaged).unwrap();
    assert_index_holds(dir.path(), &want);
    Store::open(dir.path(), inline_opts()).unwrap().close();
    let text = fs::read_to_string(&index).unwrap();
    assert_eq!(text.lines().count(), 20);
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<IndexLine>(l).is_ok()));
    assert_index_holds(dir.path(), &want);

    // 3. No index at all.
    fs::remove_file(&index).unwrap();
    assert_index_holds(dir.path(), &want);
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    assert_eq!(store.next_seq(), 21);
    assert_index_holds(dir.path(), &want);
    // New events go to a new segment numbered after every existing one.
    let mut st = store.begin(T, "10.0.0.9:1").unwrap();
    st.write_body(Some("application/xml"), b"<new/>");
    let ev = store
        .commit_wait(st.seal(Default::default(), None, "10.0.0.9").unwrap())
        .unwrap();
    assert_eq!(ev.seq, 21);
    assert_eq!(
        ev.segment,
        dir.path().join("2024-02-29/events-00000021.seg")
    );
    store.close();
    want.insert(21, b"<new/>".to_vec());
    assert_index_holds(dir.path(), &want);

    // 4. A record whose bytes do not match its checksum is not taken (nor anything after it in
    //    its segment: only a crash's unfinished write can look like that).
    fs::remove_file(&index).unwrap();
    let idx_line = {
        let mut bytes = fs::read(&seg).unwrap();
        let pos = want[&15].len() / 2;
        // Find event 15's body in the segment and flip one byte of it.
        let at = bytes
            .windows(want[&15].len())
            .position(|w| w == want[&15].as_slice())
            .unwrap();
        bytes[at + pos] ^= 0xff;
        fs::write(&seg, bytes).unwrap();
        read_index(dir.path()).unwrap()
    };
    let seqs: Vec<u64> = idx_line.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (1..=14).chain([21]).collect::<Vec<u64>>());
}

#[test]
fn a_declared_length_reserves_memory_only_when_bytes_come_and_at_most_the_spill_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    let spill = inline_opts().spill_bytes;
    let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
    // An attacker's Content-Length: nothing is allocated for a head alone...
    st.reserve(u64::MAX);
    assert_eq!(st.mem.capacity(), 0);
    // ...and no more than the spill threshold once the body starts.
    st.write_body(Some("application/xml"), b"<a/>");
    assert!(st.mem.capacity() >= spill && st.mem.capacity() < 2 * spill);
    let ev = store
        .commit_wait(st.seal(Default::default(), None, "10.0.0.5").unwrap())
        .unwrap();
    assert_eq!(ev.read("body.xml").unwrap(), b"<a/>");
    store.close();
}

#[test]
fn small_events_are_written_over_zeros_flushed_ahead_and_large_batches_just_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    let commit = |body: &[u8]| commit_at(&store, T, "application/xml", body);
    let end = |ev: &StoredEvent| ev.files.iter().map(|f| f.offset + f.bytes).max().unwrap();
    let a = commit(b"<a/>");
    let size = fs::metadata(&a.segment).unwrap().len();
    assert_eq!(size, end(&a) + ZERO_AHEAD, "zeros ahead of the first batch");
    // The next small event lands on the zeros: the file does not grow.
    let b = commit(b"<b/>");
    assert_eq!(b.segment, a.segment);
    assert_eq!(fs::metadata(&b.segment).unwrap().len(), size);
    assert_eq!(b.read("body.xml").unwrap(), b"<b/>");
    // An event larger than the batch limit goes past the zeros and adds none.
    let big = vec![7u8; ZERO_AHEAD as usize + 1000];
    let c = commit(&big);
    assert_eq!(fs::metadata(&c.segment).unwrap().len(), end(&c));
    assert_eq!(c.read("body.xml").unwrap(), big);
    store.close();
    // Readers stop at the zeros; every event is there once.
    let idx = read_index(dir.path()).unwrap();
    assert_eq!(
        idx.iter().map(|l| l.seq).collect::<Vec<_>>(),
        vec![a.seq, b.seq, c.seq]
    );
    fs::remove_file(dir.path().join(INDEX_FILE)).unwrap();
    assert_eq!(read_index(dir.path()).unwrap().len(), 3);
}

/// Wait (up to 20 s) until `path` exists with `len` bytes, then a little more for the preparer
/// to report it.
fn wait_for_size(path: &Path, len: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while fs::metadata(path).map(|m| m.len()).ok() != Some(len) {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never reached {len}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
}

#[test]
fn small_events_go_to_segments_zeroed_ahead_by_the_preparer() {
    let dir = tempfile::tempdir().unwrap();
    const PREP: u64 = 256 * 1024;
    let opts = StoreOptions {
        prepared_bytes: PREP,
        ..StoreOptions::default()
    };
    let now = Timestamp::now();
    let date = date_of(now);
    let seg = |n: u64| dir.path().join(format!("{date}/events-{n:08}.seg"));
    let store = Store::open(dir.path(), opts.clone()).unwrap();
    let commit = |body: &[u8]| commit_at(&store, now, "image/jpeg", body);
    let end = |ev: &StoredEvent| ev.files.iter().map(|f| f.offset + f.bytes).max().unwrap();
    // Opening asks for today's first segment.
    wait_for_size(&seg(1), PREP);
    let pic = |n: u8| vec![n; 100_000];
    let a = commit(&pic(1));
    assert_eq!(a.segment, seg(1));
    assert_eq!(
        fs::metadata(&a.segment).unwrap().len(),
        PREP,
        "written over the zeros"
    );
    // The next one is asked for after the batch.
    wait_for_size(&seg(2), PREP);
    let b = commit(&pic(2));
    assert_eq!(b.segment, seg(1));
    // The third does not fit in what is left: it starts the prepared segment, and the first
    // loses its unused zeros.
    let c = commit(&pic(3));
    assert_eq!(c.segment, seg(2));
    let first = c.files.iter().map(|f| f.offset).min().unwrap();
    assert!(first < 4096, "{:?}", c.files);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while fs::metadata(seg(1)).unwrap().len() != end(&b) {
        assert!(
            std::time::Instant::now() < deadline,
            "segment 1 not trimmed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // A batch larger than the zeros just appends to the current segment.
    let big = vec![9u8; 300_000];
    let d = commit(&big);
    assert_eq!(d.segment, seg(2));
    store.close();
    // Closing removes a segment made but never written to and trims the last one.
    assert!(!seg(3).exists());
    assert_eq!(fs::metadata(seg(2)).unwrap().len(), end(&d));
    for (ev, want) in [(&a, pic(1)), (&b, pic(2)), (&c, pic(3)), (&d, big)] {
        assert_eq!(ev.read("body.jpg").unwrap(), want);
    }
    let idx = read_index(dir.path()).unwrap();
    assert_eq!(
        idx.iter().map(|l| l.seq).collect::<Vec<_>>(),
        vec![a.seq, b.seq, c.seq, d.seq]
    );
    // A crash can leave a prepared segment never written to (zeros, or nothing at all): the next
    // start removes it; segments with records stay.
    fs::write(seg(7), vec![0u8; 5000]).unwrap();
    fs::write(seg(8), b"").unwrap();
    let store = Store::open(dir.path(), opts).unwrap();
    assert!(!seg(7).exists() && !seg(8).exists());
    assert!(seg(1).exists() && seg(2).exists());
    let e = commit_vmd(&store, b"<e/>");
    store.close();
    assert_eq!(e.read("body.xml").unwrap(), b"<e/>");
    assert_eq!(read_index(dir.path()).unwrap().len(), 5);
}

#[test]
fn a_preparer_that_fails_leaves_events_stored_with_zeros_in_line_and_waits_before_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let today = date_of(Timestamp::now());
    // Today's date directory cannot be made: a file has its name.
    fs::write(dir.path().join(&today), b"not a directory").unwrap();
    let opts = StoreOptions {
        prepared_bytes: 256 * 1024,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut evs = Vec::new();
    for i in 0..5u8 {
        evs.push(commit_at(&store, T, "application/xml", &[b'a' + i; 100]));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // All in the first segment, which got zeros in line after the first event; no segment was
    // prepared meanwhile.
    let segs: BTreeSet<_> = evs.iter().map(|e| e.segment.clone()).collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    let seg = segs.iter().next().unwrap();
    let end = evs[0]
        .files
        .iter()
        .map(|f| f.offset + f.bytes)
        .max()
        .unwrap();
    assert_eq!(fs::metadata(seg).unwrap().len(), end + ZERO_AHEAD);
    assert_eq!(
        fs::read_dir(seg.parent().unwrap()).unwrap().count(),
        1,
        "no prepared segment within the pause"
    );
    store.close();
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e.read("body.xml").unwrap(), [b'a' + i as u8; 100]);
    }
}

/// An event sealed but committed after the store closed is refused as such, by kind.
#[test]
fn commit_after_close_is_refused_as_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), inline_opts()).unwrap();
    let mut st = store.begin(T, "10.0.0.9:1").unwrap();
    st.write_body(Some("application/xml"), b"<x/>");
    let sealed = st
        .seal(Default::default(), Some("VMD"), "10.0.0.9")
        .unwrap();
    store.close();
    assert!(matches!(
        store.commit_wait(sealed),
        Err(super::CommitError::Closed)
    ));
}
