//! Static files compiled into the binary, served under names that change
//! whenever their content does, so they can be cached for a year.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

pub struct Asset {
    /// The versioned file name under `/assets/`.
    pub name: String,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

pub struct Assets {
    pub htmx: Asset,
    pub sse: Asset,
    pub app_js: Asset,
    pub app_css: Asset,
    pub stream_worker: Asset,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Vendored files already carry their version in their name.
fn vendored(name: &str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset { name: name.to_owned(), content_type, body }
}

/// Our own files get a content hash in their name.
fn hashed(stem: &str, ext: &str, content_type: &'static str, body: &'static [u8]) -> Asset {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let name = format!("{stem}.{:08x}.{ext}", hasher.finish() as u32);
    Asset { name, content_type, body }
}

pub static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let htmx = vendored("htmx-2.0.11.min.js", JS, include_bytes!("../assets/vendor/htmx-2.0.11.min.js"));
    let sse = vendored(
        "htmx-ext-sse-2.2.4.min.js",
        JS,
        include_bytes!("../assets/vendor/htmx-ext-sse-2.2.4.min.js"),
    );
    let app_js = hashed("app", "js", JS, include_bytes!("../assets/app.js"));
    let app_css = hashed("app", "css", CSS, include_bytes!("../assets/app.css"));
    let stream_worker = hashed("stream-worker", "js", JS, include_bytes!("../assets/stream-worker.js"));
    Assets { htmx, sse, app_js, app_css, stream_worker }
});

impl Assets {
    pub fn find(&self, name: &str) -> Option<&Asset> {
        [&self.htmx, &self.sse, &self.app_js, &self.app_css, &self.stream_worker]
            .into_iter()
            .find(|a| a.name == name)
    }

    pub fn url(asset: &Asset) -> String {
        format!("/assets/{}", asset.name)
    }
}
