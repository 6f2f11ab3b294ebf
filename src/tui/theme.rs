//! Colours, in one place so `NO_COLOR` can turn them all off (modifiers such as reverse video stay,
//! so the selection is still visible on a monochrome terminal).

use ratatui::style::{Color, Modifier, Style};

use crate::model::Verdict;
use crate::tcp::Handshake;

/// The styles every component draws with.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colours unless the `NO_COLOR` environment variable is set (any value).
    pub fn from_env() -> Self {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn bad(self) -> Style {
        self.fg(Color::Red)
    }
    pub fn handshake_fail(self) -> Style {
        self.fg(Color::Magenta)
    }
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn focus_border(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn border(self) -> Style {
        self.dim()
    }

    /// The colour of a verdict: ok green, error_status and not_captured (uncertain) yellow,
    /// no_response/incomplete/malformed_response red.
    pub fn verdict(self, v: Verdict) -> Style {
        match v {
            Verdict::Ok => self.ok(),
            Verdict::ErrorStatus | Verdict::NotCaptured | Verdict::EncryptedAnswered => self.warn(),
            Verdict::NoResponse | Verdict::Incomplete | Verdict::MalformedResponse => self.bad(),
        }
    }

    /// The colour of a connection that carried no request.
    pub fn handshake(self, h: Handshake) -> Style {
        match h {
            h if h.failed() => self.handshake_fail(),
            _ => self.dim(),
        }
    }
}
