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

/// True for exactly the strings [`random_token`] can produce: 22
/// base64url characters carry 132 bits, so the last one's low 4 bits
/// are zero (it is one of `A`, `Q`, `g`, `w`).
fn is_token(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == ID_LEN
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && matches!(bytes[ID_LEN - 1], b'A' | b'Q' | b'g' | b'w')
}

/// Defines an id type: [`ID_LEN`] base64url characters, kept inline (no
/// heap allocation per id). `secret` ids print only a prefix in `Debug`.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, secret: $secret:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name([u8; ID_LEN]);

        impl $name {
            pub fn random() -> Self {
                Self::parse(&random_token()).expect("random tokens are well formed")
            }

            /// Accepts only well-formed ids, so garbage never reaches a store.
            pub fn parse(text: &str) -> Option<Self> {
                if !is_token(text) {
                    return None;
                }
                text.as_bytes().try_into().ok().map(Self)
            }

            pub fn as_str(&self) -> &str {
                // Built only from base64url text, so always ASCII.
                std::str::from_utf8(&self.0).unwrap_or_default()
            }

            /// A short prefix for logs: enough to correlate lines, far too
            /// little to use the capability.
            pub fn redacted(&self) -> &str {
                &self.as_str()[..4]
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $secret {
                    write!(f, "{}({}…)", stringify!($name), self.redacted())
                } else {
                    write!(f, "{}({})", stringify!($name), self.as_str())
                }
            }
        }
    };
}

id_type! {
    /// The writable id of a session, as it appears in `/s/{sid}`. A
    /// capability: `Debug` never prints it whole, so a stray `{:?}` in a
    /// log line cannot leak it.
    SessionId, secret: true
}

id_type! {
    /// The read-only capability of a session, as it appears in `/v/{token}`.
    /// Unrelated to the session id, so it never reveals it.
    ReadToken, secret: true
}

id_type! {
    /// Names one open view (a tab or an embedded fragment), so a view is
    /// not echoed its own change. Not a secret: it grants nothing.
    ViewId, secret: false
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
    fn exactly_the_encodings_of_16_bytes_are_ids() {
        // Every last character, checked against a real decoder.
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for last in alphabet.chars() {
            let text = format!("{}{last}", "x".repeat(ID_LEN - 1));
            let decodes = URL_SAFE_NO_PAD.decode(&text).is_ok_and(|b| b.len() == ID_BYTES);
            assert_eq!(is_token(&text), decodes, "{text}");
        }
    }

    #[test]
    fn debug_does_not_reveal_the_id() {
        let id = SessionId::random();
        assert!(!format!("{id:?}").contains(id.as_str()));
    }
}
