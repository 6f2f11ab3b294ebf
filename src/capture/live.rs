//! Live capture through libpcap: the thin IO shell behind `alarmscope sniff`.
//!
//! Non-blocking reads with our own `poll(2)` wait, because a blocking `pcap_next_ex` on Linux can
//! wait forever on an idle interface even with a timeout set (see shared capture notes): every
//! wait has a deadline, so `--duration` and Ctrl-C work on a silent interface.

use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use pcap::{Active, Capture, Device, Precision, Savefile};

use super::file::RawFrame;
use super::frame::LinkType;
use crate::time::Timestamp;

/// What to capture.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Interface name; `None` = `any` on Linux, libpcap's default elsewhere.
    pub interface: Option<String>,
    /// BPF filter expression.
    pub filter: Option<String>,
    /// Bytes kept per frame: large enough for whole frames, including offloaded super-frames.
    pub snaplen: i32,
    /// Kernel buffer for the capture, bytes (`sniff --buffer-size`). Default 64 MiB: the kernel
    /// drops what arrives while the buffer is full, and a loaded machine's analysis falls behind
    /// in bursts (issue #14: drops at 3000 events/s with the former 32 MiB default).
    pub buffer_size: i32,
    /// Also save every captured frame to this pcap file.
    pub write: Option<PathBuf>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            interface: None,
            filter: None,
            snaplen: 262_144,
            buffer_size: 64 << 20,
            write: None,
        }
    }
}

/// Why a live capture could not start. Displayed as one line.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("capturing on {iface} is not permitted: run as root, or grant the capability once with `setcap cap_net_raw,cap_net_admin=eip {exe}` ({detail})")]
    NotPermitted {
        iface: String,
        exe: String,
        detail: String,
    },
    #[error("no such interface: {iface} (see `alarmscope sniff --list-interfaces`)")]
    NoSuchInterface { iface: String },
    #[error("the capture filter does not compile: {filter:?}: {detail}")]
    BadFilter { filter: String, detail: String },
    #[error("cannot write {path}: {detail}")]
    Write { path: String, detail: String },
    #[error("capture on {iface} failed: {detail}")]
    Other { iface: String, detail: String },
}

/// Packet counters from libpcap (kernel drops explain capture gaps).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct LiveStats {
    pub received: u64,
    /// Dropped because the buffer was full (alarmscope too slow or the buffer too small).
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub if_dropped: u64,
}

impl LiveStats {
    /// Every packet the capture lost (buffer full, or interface/driver).
    pub fn dropped_total(&self) -> u64 {
        self.dropped.saturating_add(self.if_dropped)
    }
}

/// An open live capture.
pub struct LiveCapture {
    cap: Capture<Active>,
    link: LinkType,
    save: Option<Savefile>,
    iface: String,
    buf: Vec<u8>,
    ts: Timestamp,
    orig_len: u32,
}

/// The interface used when none is named.
pub fn default_interface() -> String {
    if cfg!(target_os = "linux") {
        "any".to_string()
    } else {
        Device::lookup()
            .ok()
            .flatten()
            .map(|d| d.name)
            .unwrap_or_else(|| "any".to_string())
    }
}

/// Interfaces libpcap can capture on, with their description and addresses.
pub fn list_interfaces() -> Result<Vec<String>, LiveError> {
    let devs = Device::list().map_err(|e| LiveError::Other {
        iface: "-".into(),
        detail: e.to_string(),
    })?;
    Ok(devs
        .into_iter()
        .map(|d| {
            let addrs: Vec<String> = d.addresses.iter().map(|a| a.addr.to_string()).collect();
            let mut line = d.name.clone();
            if let Some(desc) = d.desc {
                line.push_str(&format!("  ({desc})"));
            }
            if !addrs.is_empty() {
                line.push_str(&format!("  {}", addrs.join(", ")));
            }
            line
        })
        .collect())
}

fn classify(iface: &str, e: pcap::Error) -> LiveError {
    let detail = e.to_string();
    let low = detail.to_ascii_lowercase();
    if low.contains("permission") || low.contains("not permitted") {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "alarmscope".into());
        LiveError::NotPermitted {
            iface: iface.to_string(),
            exe,
            detail,
        }
    } else if low.contains("no such device")
        || low.contains("doesn't exist")
        || low.contains("no such interface")
    {
        LiveError::NoSuchInterface {
            iface: iface.to_string(),
        }
    } else {
        LiveError::Other {
            iface: iface.to_string(),
            detail,
        }
    }
}

impl LiveCapture {
    /// Open the interface, apply the filter, open the save file.
    ///
    /// Not in immediate mode: on Linux, libpcap then uses a TPACKET_V2 ring of fixed slots of
    /// the snapshot length each (256 KiB), so a 64 MiB buffer held only 256 packets and a
    /// scheduling hiccup of a few milliseconds dropped packets at 5000 events/s while sniff used
    /// a fifth of a core (benches/sniff_load.sh). Without it, TPACKET_V3 packs packets into
    /// blocks by their real size, and a block is handed over when full or after the 100 ms
    /// timeout: verdicts come at most that much later, which the answer timeout dwarfs.
    pub fn open(opts: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let iface = opts.interface.clone().unwrap_or_else(default_interface);
        let cap = Capture::from_device(iface.as_str())
            .map_err(|e| classify(&iface, e))?
            .snaplen(opts.snaplen)
            .buffer_size(opts.buffer_size)
            .immediate_mode(false)
            .precision(Precision::Nano)
            .timeout(100)
            .open()
            .map_err(|e| classify(&iface, e))?;
        let mut cap = cap.setnonblock().map_err(|e| classify(&iface, e))?;
        if let Some(f) = &opts.filter {
            cap.filter(f, true).map_err(|e| LiveError::BadFilter {
                filter: f.clone(),
                detail: e.to_string(),
            })?;
        }
        let link = LinkType::from_dlt(cap.get_datalink().0);
        let save = match &opts.write {
            Some(p) => Some(cap.savefile(p).map_err(|e| LiveError::Write {
                path: p.display().to_string(),
                detail: e.to_string(),
            })?),
            None => None,
        };
        Ok(LiveCapture {
            cap,
            link,
            save,
            iface,
            buf: Vec::new(),
            ts: Timestamp::default(),
            orig_len: 0,
        })
    }

    /// The interface being captured.
    pub fn interface(&self) -> &str {
        &self.iface
    }

    /// The capture's link type.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Next frame, waiting at most `wait` for one. `Ok(None)` when none arrived in time. The
    /// frame is copied into a buffer owned by the capture (live rates make the copy cheap).
    #[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
    pub fn next(&mut self, wait: Duration) -> Result<Option<RawFrame<'_>>, LiveError> {
        if !self.read_one()? {
            let mut pfd = libc::pollfd {
                fd: self.cap.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd on the stack, count 1.
            let _ = unsafe { libc::poll(&mut pfd, 1, ms) };
            if !self.read_one()? {
                return Ok(None);
            }
        }
        Ok(Some(RawFrame {
            ts: self.ts,
            link: self.link,
            data: &self.buf,
            orig_len: self.orig_len,
        }))
    }

    /// Read one packet into `buf` if one is ready.
    fn read_one(&mut self) -> Result<bool, LiveError> {
        match self.cap.next_packet() {
            Ok(p) => {
                if let Some(s) = self.save.as_mut() {
                    s.write(&p);
                }
                self.ts = Timestamp::from_nanos(p.header.ts.tv_sec, p.header.ts.tv_usec);
                self.orig_len = p.header.len;
                self.buf.clear();
                self.buf.extend_from_slice(p.data);
                Ok(true)
            }
            Err(pcap::Error::TimeoutExpired) => Ok(false),
            Err(e) => Err(LiveError::Other {
                iface: self.iface.clone(),
                detail: e.to_string(),
            }),
        }
    }

    /// libpcap's counters.
    pub fn stats(&mut self) -> LiveStats {
        match self.cap.stats() {
            Ok(s) => LiveStats {
                received: u64::from(s.received),
                dropped: u64::from(s.dropped),
                if_dropped: u64::from(s.if_dropped),
            },
            Err(_) => LiveStats::default(),
        }
    }

    /// Flush the save file, if any.
    pub fn flush(&mut self) {
        if let Some(s) = self.save.as_mut() {
            let _ = s.flush();
        }
    }
}
