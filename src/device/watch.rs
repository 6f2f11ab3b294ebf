//! The device's alertStream, read live: a thread that keeps `GET
//! /ISAPI/Event/notification/alertStream` open (digest authentication, reconnecting when it
//! drops) and hands what the sans-IO [`AlertStreamDecoder`] finds to a channel, each message
//! stamped with the time it arrived. Used by `device watch` and by doctor's live step.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{DeviceError, IsapiClient};
use crate::isapi::alert_stream::{AlertStreamDecoder, StreamItem};
use crate::isapi::body::content_type_param;

/// Where the stream is read from.
pub const ALERT_STREAM: &str = "/ISAPI/Event/notification/alertStream";

/// What the stream thread reports.
#[derive(Debug)]
pub enum StreamMsg {
    /// The stream is open (again).
    Connected,
    Item(StreamItem),
    /// The stream ended or failed; the thread reconnects after a second.
    Dropped(String),
    /// The device will not give the stream (403, 404, wrong password): the thread stops.
    Unavailable(String),
}

/// How to log in (a new client is made on the thread).
#[derive(Debug, Clone)]
pub struct StreamLogin {
    pub device: String,
    pub user: String,
    pub password: String,
    pub insecure: bool,
    /// Connect and header timeout.
    pub timeout: Duration,
}

fn final_error(e: &DeviceError) -> bool {
    matches!(
        e,
        DeviceError::Forbidden { .. }
            | DeviceError::NotSupported { .. }
            | DeviceError::NotIsapi { .. }
            | DeviceError::WrongPassword { .. }
            | DeviceError::NoDigest { .. }
            | DeviceError::Usage(_)
            | DeviceError::Http { .. }
    )
}

/// Read the stream on a new thread until `until` or `stop`. Messages go to `tx` with their
/// arrival time; the thread ends by itself (each connection is bounded by `until`).
pub fn spawn_stream(
    login: StreamLogin,
    until: Option<Instant>,
    stop: Arc<AtomicBool>,
    tx: Sender<(Instant, StreamMsg)>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("alarmscope-alertstream".into())
        .spawn(move || {
            let send = |m: StreamMsg| tx.send((Instant::now(), m)).is_ok();
            let mut client = match IsapiClient::new(
                &login.device,
                &login.user,
                &login.password,
                login.insecure,
                login.timeout,
            ) {
                Ok(c) => c,
                Err(e) => {
                    send(StreamMsg::Unavailable(e.to_string()));
                    return;
                }
            };
            let mut buf = vec![0u8; 16 * 1024];
            let mut items = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // A day at most per connection without a deadline: the loop reconnects.
                let left = until.map_or(Duration::from_secs(86_400), |u| {
                    u.saturating_duration_since(Instant::now())
                });
                if left.is_zero() {
                    return;
                }
                let answer =
                    match client.open_stream(ALERT_STREAM, left + Duration::from_millis(500)) {
                        Ok(a) => a,
                        Err(e) => {
                            if final_error(&e) {
                                send(StreamMsg::Unavailable(e.to_string()));
                                return;
                            }
                            if !send(StreamMsg::Dropped(e.to_string())) {
                                return;
                            }
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    };
                if !send(StreamMsg::Connected) {
                    return;
                }
                let boundary = content_type_param(&answer.content_type, "boundary");
                let mut dec = AlertStreamDecoder::new(boundary.as_deref());
                let mut body = answer.body;
                let why = loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match body.read(&mut buf) {
                        Ok(0) => break "the device closed the stream".to_string(),
                        Ok(n) => {
                            dec.feed(buf.get(..n).unwrap_or_default(), &mut items);
                            for it in items.drain(..) {
                                if !send(StreamMsg::Item(it)) {
                                    return;
                                }
                            }
                        }
                        Err(e) => break e.to_string(),
                    }
                };
                dec.finish(&mut items);
                for it in items.drain(..) {
                    send(StreamMsg::Item(it));
                }
                if until.is_some_and(|u| Instant::now() >= u) {
                    return;
                }
                if !send(StreamMsg::Dropped(why)) {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
}
