//! How events from real devices are shown: a `duration` event (a continuing alarm naming its
//! `relationEvent`) reads as both, and recorder events name their camera next to the raw
//! channel. The bodies are real devices' (shared/real-devices/events, read where present,
//! never copied into the repository); without them the tests say so and pass nothing off as
//! checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::path::{Path, PathBuf};

use alarmscope::isapi::decode_event;
use alarmscope::model::EventSummary;

/// shared/real-devices/events beside the checkout (or above it, for a worktree).
fn events_dir() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/real-devices/events"))
        .find(|p| p.is_dir())
}

fn summary(name: &str) -> Option<EventSummary> {
    let Some(dir) = events_dir() else {
        eprintln!("shared/real-devices/events not found: {name} not checked");
        return None;
    };
    let body = std::fs::read(dir.join(name)).ok()?;
    let e = decode_event(&body, Some("application/xml")).expect("a real body decodes");
    Some(EventSummary::from(&e))
}

#[test]
fn duration_events_show_the_continuation_and_the_alarm() {
    for name in [
        "nrjs_duration_fielddetection.xml",
        "pyhik62_duration_v1.xml",
    ] {
        let Some(e) = summary(name) else { return };
        assert!(e.duration, "{name}");
        assert_eq!(e.event_type.as_deref(), Some("fielddetection"), "{name}");
        assert_eq!(e.type_label(), "duration (fielddetection)", "{name}");
        // Filters find it by either type.
        let j = serde_json::to_value(&e).expect("json");
        assert_eq!(j["duration"], true);
    }
    // A plain event is no continuation.
    let Some(e) = summary("nrjs_fielddetection_inactive.xml") else {
        return;
    };
    assert!(!e.duration);
    assert_eq!(e.type_label(), "fielddetection");
    assert!(serde_json::to_value(&e)
        .expect("json")
        .get("duration")
        .is_none());
}

#[test]
fn recorder_events_name_their_camera() {
    let cases = [
        // dynChannelID only (an NVR): the camera.
        ("nr105_vmd_dynchannel_only.xml", "camera 5"),
        ("nrjs_vmd_v1_dynchannel4.xml", "camera 4"),
        // Both, equal.
        ("nrjs_vmd_v2_nvr_ch13.xml", "camera 13"),
        // An NVR numbering IP cameras after 32 analogue inputs, without dynChannelID: a guess.
        ("hn_nvr_2_fielddetection.xml", "channel 34 (camera 2?)"),
        // A camera: its channel.
        ("pyhik62_duration_v1.xml", "channel 1"),
    ];
    for (name, want) in cases {
        let Some(e) = summary(name) else { return };
        assert_eq!(e.channel_label().as_deref(), Some(want), "{name}");
    }
    let Some(e) = summary("nr105_vmd_dynchannel_only.xml") else {
        return;
    };
    assert_eq!(e.dyn_channel.as_deref(), Some("5"));
}

#[test]
fn labels_without_the_shared_bodies() {
    let e = EventSummary {
        event_type: Some("linedetection".into()),
        duration: true,
        channel: Some("1".into()),
        dyn_channel: Some("5".into()),
        ..EventSummary::default()
    };
    assert_eq!(e.type_label(), "duration (linedetection)");
    assert_eq!(e.channel_label().as_deref(), Some("channel 1 (camera 5)"));
    let bare = EventSummary {
        duration: true,
        channel: Some("32".into()),
        ..EventSummary::default()
    };
    assert_eq!(bare.type_label(), "duration");
    assert_eq!(bare.channel_label().as_deref(), Some("channel 32"));
}
