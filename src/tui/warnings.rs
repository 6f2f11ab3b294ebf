//! `tracing` warnings into the screen's feed.
//!
//! Why: the listener and its store report trouble that does not belong to one event (an index
//! line that could not be written, accept errors, a segment that could not be prepared) with
//! `tracing::warn!`. Headless, those go to stderr; under the TUI, stderr would write over the
//! screen, so this layer turns each into a [`Feed::Warning`] instead, listed under `w`.

use std::fmt::Write as _;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::feed::Feed;

/// Where the layer sends: set while a session runs, emptied when it ends (so that the feed
/// channel closes once its producer is done).
pub type WarningSlot = Arc<Mutex<Option<Sender<Feed>>>>;

/// A layer sending each event it sees as one line into the slot's channel.
pub struct ToFeed(pub WarningSlot);

impl<S: Subscriber> Layer<S> for ToFeed {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(tx) = self.0.lock().ok().and_then(|s| s.clone()) else {
            return;
        };
        let mut line = Line::default();
        event.record(&mut line);
        let meta = event.metadata();
        let _ = tx.send(Feed::Warning(format!(
            "{} {}: {}{}",
            meta.level(),
            meta.target(),
            line.message,
            line.fields
        )));
    }
}

/// An event's message, and its other fields as ` name=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

/// Install [`ToFeed`] as the process's subscriber, at level warn (or `RUST_LOG`). Does nothing
/// when a subscriber is installed already.
pub fn install(slot: WarningSlot) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(ToFeed(slot))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn warnings_become_feed_lines_until_the_slot_is_emptied() {
        let (tx, rx) = std::sync::mpsc::channel();
        let slot: WarningSlot = Arc::new(Mutex::new(Some(tx)));
        let sub = tracing_subscriber::registry().with(ToFeed(slot.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(seq = 7, "cannot append to the index: {}", "disk full");
            slot.lock().unwrap().take();
            tracing::warn!("after the session");
        });
        let got: Vec<String> = rx
            .try_iter()
            .map(|f| match f {
                Feed::Warning(w) => w,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("WARN "), "{}", got[0]);
        assert!(
            got[0].ends_with(": cannot append to the index: disk full seq=7"),
            "{}",
            got[0]
        );
    }
}
