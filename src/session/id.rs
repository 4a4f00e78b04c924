//! Session ids and view ids.
//!
//! A session id is a capability: whoever holds the URL can change the state.
//! So it carries 128 bits from the OS CSPRNG and is never logged whole.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Random bytes behind every id: 128 bits.
const ID_BYTES: usize = 16;
/// Length of the base64url text of [`ID_BYTES`] bytes, without padding.
pub const ID_LEN: usize = 22;

/// Draws `ID_BYTES` from the operating system's CSPRNG and encodes them.
///
/// `getrandom` only fails when the OS has no entropy source at all; a
/// server that cannot make unguessable ids must not start handing out
/// guessable ones, so that is a fatal error.
fn random_token() -> String {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).expect("the OS random number generator is unavailable");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// True for exactly the strings [`random_token`] can produce.
fn is_token(text: &str) -> bool {
    text.len() == ID_LEN
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && URL_SAFE_NO_PAD.decode(text).is_ok_and(|b| b.len() == ID_BYTES)
}

/// The writable id of a session, as it appears in `/s/{sid}`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn random() -> Self {
        Self(random_token())
    }

    /// Accepts only well-formed ids, so garbage never reaches a store.
    pub fn parse(text: &str) -> Option<Self> {
        is_token(text).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, non-secret prefix for logs: enough to correlate lines,
    /// far too little to use the session.
    pub fn redacted(&self) -> &str {
        &self.0[..4]
    }
}

/// Debug never prints the whole capability, so a stray `{:?}` in a log
/// line cannot leak it.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", self.redacted())
    }
}

/// The read-only capability of a session, as it appears in `/v/{token}`.
/// Unrelated to the session id, so it never reveals it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReadToken(String);

impl ReadToken {
    pub fn random() -> Self {
        Self(random_token())
    }

    pub fn parse(text: &str) -> Option<Self> {
        is_token(text).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn redacted(&self) -> &str {
        &self.0[..4]
    }
}

impl fmt::Debug for ReadToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadToken({}…)", self.redacted())
    }
}

/// Names one open view (a tab or an embedded fragment), so a view is not
/// echoed its own change. Not a secret: it grants nothing.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ViewId(String);

impl ViewId {
    pub fn random() -> Self {
        Self(random_token())
    }

    pub fn parse(text: &str) -> Option<Self> {
        is_token(text).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_well_formed_and_distinct() {
        let a = SessionId::random();
        let b = SessionId::random();
        assert_eq!(a.as_str().len(), ID_LEN);
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in ["", "short", "../../etc/passwd", "AAAAAAAAAAAAAAAAAAAAA!", "AAAAAAAAAAAAAAAAAAAAAAA"] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?}");
        }
        // 22 characters whose last one carries bits past the 128th.
        assert!(SessionId::parse("AAAAAAAAAAAAAAAAAAAAAB").is_none());
    }

    #[test]
    fn debug_does_not_reveal_the_id() {
        let id = SessionId::random();
        assert!(!format!("{id:?}").contains(id.as_str()));
    }
}
