//! A stand-in for another site that embeds weight-converter's fragments.
//!
//! ```text
//! ALLOW_ORIGINS=http://127.0.0.1:8081 cargo run --release     # the app, on :8080
//! cargo run --example embed_host -- http://127.0.0.1:8080/s/SESSION_ID [http://127.0.0.1:8080/s/OTHER_ID]
//! ```
//! then open http://127.0.0.1:8081. With one session, both converters on
//! the page show it.

use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The host page, with the app's origin and its two sessions filled in.
pub fn host_page(app_origin: &str, first: &str, second: &str) -> String {
    include_str!("embed.html")
        .replace("__APP__", app_origin)
        .replace("__SESSION__", first)
        .replace("__SECOND__", second)
}

/// `http://host:port/s/SESSION_ID` → (`http://host:port`, `SESSION_ID`).
fn split(session_url: &str) -> Option<(&str, &str)> {
    let (origin, session) = session_url.split_once("/s/")?;
    Some((origin, session.trim_end_matches('/')))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let first = args.first().and_then(|url| split(url));
    let second = args.get(1).map_or(first, |url| split(url));
    let (Some((origin, first)), Some((_, second))) = (first, second) else {
        eprintln!("usage: embed_host http://APP_HOST:PORT/s/SESSION_ID [http://APP_HOST:PORT/s/OTHER_ID]");
        std::process::exit(2);
    };
    let page = host_page(origin, first, second);
    let app = Router::new().route("/", get(move || async move { Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
    println!("host page on http://127.0.0.1:8081 (start the app with ALLOW_ORIGINS=http://127.0.0.1:8081)");
    axum::serve(listener, app).await
}
