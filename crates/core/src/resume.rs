//! Which resume tokens bring a party back: the rule, in one place, for the
//! server and the simulation alike.
//!
//! A party holds a token; resuming with it hands out a new one. If the
//! connection drops during that handshake (the client sent `resume` but
//! never read `resumed`), the client still holds the old token and will
//! retry with it. So the token just used stays good until its successor
//! has been used once: at any moment a party has at most two good tokens,
//! the one it was last given and the one it resumed with to get it.
//! Resuming with either hands out a new one and retires the other, so a
//! flaky network never ends a chat, and an old token never outlives the
//! next successful resume.
//!
//! Checking a token spends nothing: a resume that is refused for another
//! reason (the wrong endpoint, the wrong login) leaves both tokens good for
//! their rightful owner.

/// A party's good resume tokens (or their hashes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeSlot<T> {
    /// The token last handed out.
    current: T,
    /// The token resumed with to get `current`, until `current` is used.
    previous: Option<T>,
}

impl<T: Copy + Eq> ResumeSlot<T> {
    /// The first token, handed out with `welcome`.
    pub fn new(first: T) -> Self {
        Self {
            current: first,
            previous: None,
        }
    }

    /// Whether `token` may resume the party now. Asking spends nothing.
    pub fn admits(&self, token: T) -> bool {
        self.current == token || self.previous == Some(token)
    }

    /// A resume with `used` went ahead and handed out `next`: `used` stays
    /// good until `next` is used, the other good token is retired and
    /// returned (to drop from an index). Returns `Err(())` and changes
    /// nothing when `used` is not good.
    #[allow(clippy::result_unit_err)] // The only failure is "not admitted".
    pub fn rotate(&mut self, used: T, next: T) -> Result<Option<T>, ()> {
        if !self.admits(used) {
            return Err(());
        }
        let retired = if used == self.current {
            self.previous
        } else {
            Some(self.current)
        };
        *self = Self {
            current: next,
            previous: Some(used),
        };
        Ok(retired)
    }

    /// Every good token (to drop from an index when the party is gone).
    pub fn tokens(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::once(self.current).chain(self.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_handshake_can_be_retried_with_the_old_token() {
        let mut slot = ResumeSlot::new(1);
        assert!(slot.admits(1));
        // Resumed with 1, got 2... which the client never read.
        assert_eq!(slot.rotate(1, 2), Ok(None));
        assert!(slot.admits(1) && slot.admits(2));
        // It retries with 1: good, and 2 (never used) is retired.
        assert_eq!(slot.rotate(1, 3), Ok(Some(2)));
        assert!(slot.admits(1) && slot.admits(3) && !slot.admits(2));
        // This time it reads 3 and later resumes with it: 1 is retired.
        assert_eq!(slot.rotate(3, 4), Ok(Some(1)));
        assert!(!slot.admits(1) && slot.admits(3) && slot.admits(4));
        assert_eq!(slot.tokens().collect::<Vec<_>>(), [4, 3]);
        // A token that is not good changes nothing.
        assert_eq!(slot.rotate(1, 5), Err(()));
        assert!(slot.admits(3) && slot.admits(4));
    }
}
