//! Static files compiled into the binary, already compressed (see
//! `build.rs`), under names that change whenever their content does, so
//! they can be cached for a year.

use crate::negotiation::weighted;

pub struct Asset {
    /// The versioned file name under `/assets/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub identity: &'static [u8],
    pub br: &'static [u8],
    pub gzip: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

// HTMX, APP_JS, APP_CSS
include!(concat!(env!("OUT_DIR"), "/assets.rs"));

const ALL: [&Asset; 3] = [&HTMX, &APP_JS, &APP_CSS];

/// `app.js` under a name that stays, for pages on other sites that embed
/// fragments: they cannot know the current content hash.
pub const APP_JS_FOR_EMBEDS: &str = "app.js";

/// A content coding a client accepts, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Asset {
    pub fn find(name: &str) -> Option<&'static Asset> {
        if name == APP_JS_FOR_EMBEDS {
            return Some(&APP_JS);
        }
        ALL.into_iter().find(|a| a.name == name)
    }

    pub fn url(&self) -> String {
        format!("/assets/{}", self.name)
    }

    /// The body in `coding`, and its `Content-Encoding` value if any.
    pub fn encoded(&self, coding: Coding) -> (&'static [u8], Option<&'static str>) {
        match coding {
            Coding::Brotli => (self.br, Some("br")),
            Coding::Gzip => (self.gzip, Some("gzip")),
            Coding::Identity => (self.identity, None),
        }
    }
}

/// Picks the best coding an `Accept-Encoding` value allows (`q=0` refuses).
pub fn negotiate(accept_encoding: &str) -> Coding {
    let accepted = |wanted: &str| {
        weighted(accept_encoding)
            .any(|(name, weight)| weight > 0 && (name.eq_ignore_ascii_case(wanted) || name == "*"))
    };
    if accepted("br") {
        Coding::Brotli
    } else if accepted("gzip") {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_the_best_accepted_coding() {
        let cases = [
            (Coding::Brotli, &["gzip, deflate, br, zstd", "*"][..]),
            (Coding::Gzip, &["gzip", "br;q=0, gzip;q=0.5", "br;Q=0, gzip", "br;q=zero, gzip"]),
            (Coding::Identity, &["", "identity", "gzip;q=0"]),
        ];
        for (coding, headers) in cases {
            for header in headers {
                assert_eq!(negotiate(header), coding, "{header}");
            }
        }
    }

    #[test]
    fn compressed_at_build_time_and_smaller() {
        for asset in ALL {
            assert!(asset.br.len() < asset.identity.len(), "{}", asset.name);
            assert!(asset.gzip.len() < asset.identity.len(), "{}", asset.name);
        }
        assert!(HTMX.br.len() < 17_000, "htmx is about 15 kB with brotli: {}", HTMX.br.len());
        assert!(APP_JS.name.starts_with("app.") && APP_JS.name.ends_with(".js"));
    }
}
