//! A stand-in for another site that embeds weight-converter's fragments.
//!
//! ```text
//! ALLOW_ORIGINS=http://127.0.0.1:8081 cargo run --release     # the app, on :8080
//! cargo run --example embed_host -- http://127.0.0.1:8080/s/SESSION_ID
//! ```
//! then open http://127.0.0.1:8081.

use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The host page, with the app's origin and the session filled in.
pub fn host_page(app_origin: &str, session: &str) -> String {
    include_str!("embed.html").replace("__APP__", app_origin).replace("__SESSION__", session)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let session_url = std::env::args().nth(1).unwrap_or_default();
    let Some((origin, session)) = session_url.split_once("/s/") else {
        eprintln!("usage: embed_host http://APP_HOST:PORT/s/SESSION_ID");
        std::process::exit(2);
    };
    let page = host_page(origin, session.trim_end_matches('/'));
    let app = Router::new().route("/", get(move || async move { Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
    println!("host page on http://127.0.0.1:8081 (start the app with ALLOW_ORIGINS=http://127.0.0.1:8081)");
    axum::serve(listener, app).await
}
