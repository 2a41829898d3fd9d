//! Errors, warnings and notes for the user. Each has a [`MessageKind`]: an error stays in the
//! status line until dismissed; a warning or a note (a success) is shown for a few seconds,
//! fades out and is gone. All of them stay in the log (the status line's "Log" button) with the
//! time they came. Only the last [`Messages::CAPACITY`] are kept, and the same message twice in
//! a row is kept once, so a long session (or a failing batch of 10,000 photos) never grows them
//! without bound. Every message is also logged (`RUST_LOG`): errors and warnings as warnings,
//! notes as info.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// How a message is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Something failed: shown in the error colour until dismissed.
    Error,
    /// Nothing failed, but not what was asked (nothing to export, a job already running):
    /// the warning colour, gone after [`MessageKind::shown_for`].
    Warning,
    /// A success or a plain note: the normal text colour, gone after
    /// [`MessageKind::shown_for`].
    Info,
}

impl MessageKind {
    /// How long the status line shows it (the last [`FADE`] of it fading out); `None`: until
    /// dismissed.
    pub fn shown_for(self) -> Option<Duration> {
        match self {
            Self::Error => None,
            Self::Warning => Some(Duration::from_secs(12)),
            Self::Info => Some(Duration::from_secs(6)),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "note",
        }
    }
}

/// How long a message takes to fade out at the end of [`MessageKind::shown_for`].
pub const FADE: Duration = Duration::from_millis(1500);

/// One message. Dereferences to its text (`message.contains("failed")`).
#[derive(Clone, Debug)]
pub struct Message {
    pub kind: MessageKind,
    pub text: String,
    /// When it came (or came again, for a repeat): starts its time in the status line.
    pub at: Instant,
    /// The wall-clock time it came, for the log.
    pub at_wall: SystemTime,
    /// Dismissed by the user, or faded out: no longer in the status line (still in the log).
    pub dismissed: bool,
}

impl Message {
    /// Its opacity in the status line at `now`: 1 while shown, falling to 0 over the last
    /// [`FADE`] of its time; 0 once dismissed or over.
    pub fn opacity(&self, now: Instant) -> f32 {
        if self.dismissed {
            return 0.0;
        }
        let Some(shown_for) = self.kind.shown_for() else {
            return 1.0;
        };
        let age = now.saturating_duration_since(self.at);
        let left = shown_for.saturating_sub(age);
        if left.is_zero() {
            0.0
        } else if left >= FADE {
            1.0
        } else {
            left.as_secs_f32() / FADE.as_secs_f32()
        }
    }

    /// How long until its look in the status line changes next (it starts fading, or fades
    /// further, or goes): when to draw again. `None` for an error or a dismissed message.
    pub fn next_change(&self, now: Instant) -> Option<Duration> {
        if self.dismissed {
            return None;
        }
        let shown_for = self.kind.shown_for()?;
        let left = shown_for.saturating_sub(now.saturating_duration_since(self.at));
        Some(if left > FADE {
            left - FADE
        } else {
            // Fading: a step every 50 ms (never zero, so headless test harnesses settle).
            Duration::from_millis(50)
        })
    }

    /// `12:34:56 UTC`: when it came, for the log.
    pub fn time_of_day_utc(&self) -> String {
        let secs = self
            .at_wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let of_day = secs % 86_400;
        format!(
            "{:02}:{:02}:{:02} UTC",
            of_day / 3600,
            (of_day % 3600) / 60,
            of_day % 60
        )
    }
}

impl std::ops::Deref for Message {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, Default)]
pub struct Messages {
    recent: VecDeque<Message>,
}

impl Messages {
    pub const CAPACITY: usize = 64;

    /// An error (what `push` always meant): shown until dismissed.
    pub fn push(&mut self, message: impl Into<String>) {
        self.error(message);
    }

    /// Something failed: shown in the error colour until dismissed.
    pub fn error(&mut self, message: impl Into<String>) {
        self.add(MessageKind::Error, message.into(), Instant::now());
    }

    /// Not what was asked, but nothing failed: shown for a while.
    pub fn warning(&mut self, message: impl Into<String>) {
        self.add(MessageKind::Warning, message.into(), Instant::now());
    }

    /// A success or a note: shown for a few seconds.
    pub fn info(&mut self, message: impl Into<String>) {
        self.add(MessageKind::Info, message.into(), Instant::now());
    }

    /// Adds a message that came at `at`. A repeat of the newest is kept once (shown again).
    pub fn add(&mut self, kind: MessageKind, text: String, at: Instant) {
        match kind {
            MessageKind::Error | MessageKind::Warning => log::warn!("{text}"),
            MessageKind::Info => log::info!("{text}"),
        }
        if let Some(last) = self.recent.back_mut()
            && last.kind == kind
            && last.text == text
        {
            last.at = at;
            last.at_wall = SystemTime::now();
            last.dismissed = false;
            return;
        }
        if self.recent.len() == Self::CAPACITY {
            self.recent.pop_front();
        }
        self.recent.push_back(Message {
            kind,
            text,
            at,
            at_wall: SystemTime::now(),
            dismissed: false,
        });
    }

    /// The newest message.
    pub fn last(&self) -> Option<&Message> {
        self.recent.back()
    }

    /// What the status line shows at `now`: the newest message still shown (an error not yet
    /// dismissed, a warning or note whose time isn't over).
    pub fn current(&self, now: Instant) -> Option<&Message> {
        self.recent.iter().rev().find(|m| m.opacity(now) > 0.0)
    }

    /// Dismisses the message the status line shows at `now`; it stays in the log.
    pub fn dismiss_current(&mut self, now: Instant) {
        if let Some(m) = self.recent.iter_mut().rev().find(|m| m.opacity(now) > 0.0) {
            m.dismissed = true;
        }
    }

    /// Dismisses every message (the log keeps them).
    pub fn dismiss_all(&mut self) {
        for m in &mut self.recent {
            m.dismissed = true;
        }
    }

    /// Errors not dismissed yet.
    pub fn open_errors(&self) -> usize {
        self.recent
            .iter()
            .filter(|m| m.kind == MessageKind::Error && !m.dismissed)
            .count()
    }

    pub fn len(&self) -> usize {
        self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Message> {
        self.recent.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_newest_kept() {
        let mut messages = Messages::default();
        for i in 0..10_000 {
            messages.push(format!("photo {i} failed"));
        }
        assert_eq!(messages.len(), Messages::CAPACITY);
        assert_eq!(messages.last().map(|m| &**m), Some("photo 9999 failed"));
        messages.push("photo 9999 failed");
        assert_eq!(messages.len(), Messages::CAPACITY, "repeats are kept once");
    }

    #[test]
    fn errors_stay_until_dismissed_notes_fade_and_go() {
        let start = Instant::now();
        let later = |secs: f32| start + Duration::from_secs_f32(secs);
        let mut messages = Messages::default();
        messages.add(MessageKind::Error, "disk full".into(), start);
        messages.add(MessageKind::Info, "Exported 3 photos".into(), later(1.0));
        // The newest shown: the note, at full strength.
        let current = messages.current(later(2.0)).unwrap();
        assert_eq!(&**current, "Exported 3 photos");
        assert_eq!(current.opacity(later(2.0)), 1.0);
        assert_eq!(
            current.next_change(later(2.0)),
            Some(MessageKind::Info.shown_for().unwrap() - FADE - Duration::from_secs(1))
        );
        // Fading at the end of its time.
        let fading = later(1.0) + MessageKind::Info.shown_for().unwrap() - FADE / 2;
        let opacity = messages.current(fading).unwrap().opacity(fading);
        assert!((opacity - 0.5).abs() < 0.01, "{opacity}");
        // Gone: the error shows again, and stays, an hour later too.
        let after = later(1.0) + MessageKind::Info.shown_for().unwrap();
        assert_eq!(messages.current(after).map(|m| &**m), Some("disk full"));
        assert_eq!(
            messages.current(later(3600.0)).map(|m| &**m),
            Some("disk full")
        );
        assert_eq!(
            messages.current(later(3600.0)).unwrap().next_change(after),
            None
        );
        // Dismissed: nothing shown, both still in the log.
        assert_eq!(messages.open_errors(), 1);
        messages.dismiss_current(later(3600.0));
        assert!(messages.current(later(3600.0)).is_none());
        assert_eq!(messages.open_errors(), 0);
        assert_eq!(messages.len(), 2);
    }

    #[test]
    fn a_repeat_is_shown_again() {
        let start = Instant::now();
        let mut messages = Messages::default();
        messages.add(MessageKind::Warning, "nothing to export".into(), start);
        let over = start + MessageKind::Warning.shown_for().unwrap();
        assert!(messages.current(over).is_none());
        messages.add(MessageKind::Warning, "nothing to export".into(), over);
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages.current(over).map(|m| m.kind),
            Some(MessageKind::Warning)
        );
        // The same text as another kind is another message.
        messages.add(MessageKind::Error, "nothing to export".into(), over);
        assert_eq!(messages.len(), 2);
    }

    #[test]
    fn log_times_are_utc_clock_times() {
        let message = Message {
            kind: MessageKind::Info,
            text: String::new(),
            at: Instant::now(),
            at_wall: SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 3600 * 13 + 62),
            dismissed: false,
        };
        assert_eq!(message.time_of_day_utc(), "13:01:02 UTC");
    }
}
