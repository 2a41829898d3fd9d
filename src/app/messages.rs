//! Errors and notes for the user: the status line shows the newest; only the last
//! [`Messages::CAPACITY`] are kept, and the same message twice in a row is kept once, so a
//! long session (or a failing batch of 10,000 photos) never grows them without bound.

use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct Messages {
    recent: VecDeque<String>,
}

impl Messages {
    pub const CAPACITY: usize = 64;

    pub fn push(&mut self, message: impl Into<String>) {
        let message = message.into();
        if self.recent.back() == Some(&message) {
            return;
        }
        if self.recent.len() == Self::CAPACITY {
            self.recent.pop_front();
        }
        self.recent.push_back(message);
    }

    /// The newest message.
    pub fn last(&self) -> Option<&String> {
        self.recent.back()
    }

    /// Dismisses the newest message.
    pub fn pop(&mut self) -> Option<String> {
        self.recent.pop_back()
    }

    pub fn len(&self) -> usize {
        self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
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
        assert_eq!(
            messages.last().map(String::as_str),
            Some("photo 9999 failed")
        );
        messages.push("photo 9999 failed");
        assert_eq!(messages.len(), Messages::CAPACITY, "repeats are kept once");
    }
}
