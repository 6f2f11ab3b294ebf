//! Writing body parts (pictures, event metadata) to files: `replay --extract DIR` and the TUI's
//! save key. Streams each part straight to its file; names are collision-free and never leave
//! the directory whatever the device put in its filenames.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::isapi::PartHeader;
use crate::model::ExchangeRef;
use crate::pipeline::ExchangeSink;

/// Keep `[A-Za-z0-9._-]`, replace the rest with `_`, drop leading dots, cap the length. Never
/// returns a path separator, `..` or an empty name.
pub fn sanitize_file_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    s.truncate(80); // only ASCII is left, so 80 is a char boundary
    if s.is_empty() {
        s.push_str("part");
    }
    s
}

/// Default extension from a content type, for plain bodies and parts whose name has none.
pub fn extension_for(content_type: Option<&str>) -> &'static str {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.contains("jpeg") || ct.contains("jpg") {
        "jpg"
    } else if ct.contains("png") {
        "png"
    } else if ct.contains("xml") {
        "xml"
    } else if ct.contains("json") {
        "json"
    } else {
        "bin"
    }
}

/// A part's own name for a file: its filename (else its name) sanitised, with an extension from
/// its content type when it has none. Shared by `--extract` and the listener's store.
pub fn part_base_name(header: &PartHeader) -> String {
    let base = header
        .filename
        .as_deref()
        .or(header.name.as_deref())
        .unwrap_or("part");
    let mut name = sanitize_file_name(base);
    if !name.contains('.') {
        name.push('.');
        name.push_str(extension_for(header.content_type.as_deref()));
    }
    name
}

/// The file name for one part: `c<conn>-r<request>-p<part>-<device>-<name>`.
pub fn part_file_name(ex: ExchangeRef, client: &str, header: &PartHeader) -> String {
    let name = part_base_name(header);
    let device = sanitize_file_name(crate::model::host_of(client));
    format!(
        "c{}-r{}-p{}-{}-{}",
        ex.connection, ex.index, header.index, device, name
    )
}

/// Writes every part to `dir`. Errors are collected (first few kept) rather than aborting the
/// analysis.
pub struct Extractor {
    dir: PathBuf,
    open: HashMap<(ExchangeRef, usize), BufWriter<File>>,
    /// Files written, in order.
    pub written: Vec<PathBuf>,
    /// Problems writing (bounded).
    pub errors: Vec<String>,
}

impl Extractor {
    /// Create `dir` if needed.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Extractor {
            dir: dir.to_path_buf(),
            open: HashMap::new(),
            written: Vec::new(),
            errors: Vec::new(),
        })
    }

    fn error(&mut self, e: String) {
        if self.errors.len() < 20 {
            self.errors.push(e);
        }
    }
}

impl ExchangeSink for Extractor {
    fn part_start(&mut self, ex: ExchangeRef, client: &str, header: &PartHeader) {
        let path = self.dir.join(part_file_name(ex, client, header));
        match File::create(&path) {
            Ok(f) => {
                self.open.insert((ex, header.index), BufWriter::new(f));
                self.written.push(path);
            }
            Err(e) => self.error(format!("{}: {e}", path.display())),
        }
    }

    fn part_data(&mut self, ex: ExchangeRef, index: usize, data: &[u8]) {
        if let Some(w) = self.open.get_mut(&(ex, index)) {
            if let Err(e) = w.write_all(data) {
                self.open.remove(&(ex, index));
                self.error(format!("writing part {index} of {ex:?}: {e}"));
            }
        }
    }

    fn part_end(&mut self, ex: ExchangeRef, index: usize, _bytes: u64) {
        if let Some(mut w) = self.open.remove(&(ex, index)) {
            if let Err(e) = w.flush() {
                self.error(format!("writing part {index} of {ex:?}: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_inside_the_directory() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize_file_name("..."), "part");
        assert_eq!(sanitize_file_name("a\\b/c\0d"), "a_b_c_d");
        assert_eq!(
            sanitize_file_name("licensePlatePicture.jpg"),
            "licensePlatePicture.jpg"
        );
        let h = PartHeader {
            index: 2,
            name: Some("Picture".into()),
            filename: None,
            content_type: Some("image/jpeg".into()),
            content_length: None,
        };
        let n = part_file_name(
            ExchangeRef {
                connection: 7,
                index: 1,
            },
            "[fd00::10]:5000",
            &h,
        );
        assert_eq!(n, "c7-r1-p2-fd00__10-Picture.jpg");
    }

    #[test]
    fn parts_are_streamed_to_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut x = Extractor::new(dir.path()).unwrap();
        let ex = ExchangeRef {
            connection: 1,
            index: 0,
        };
        let h = PartHeader {
            index: 0,
            name: Some("anpr.xml".into()),
            filename: None,
            content_type: None,
            content_length: None,
        };
        x.part_start(ex, "10.0.0.5:5000", &h);
        x.part_data(ex, 0, b"<a>");
        x.part_data(ex, 0, b"</a>");
        x.part_end(ex, 0, 7);
        assert_eq!(x.written.len(), 1);
        assert_eq!(std::fs::read(&x.written[0]).unwrap(), b"<a></a>");
        assert!(x.written[0].ends_with("c1-r0-p0-10.0.0.5-anpr.xml"));
    }
}
