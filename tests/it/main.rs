//! Every integration test, in one binary: one build, one link, and one
//! set of helpers (`common`, and `browser_support` for Chromium).
//!
//! Each test starts the real server on port 0, in process or as the
//! compiled binary, and talks HTTP and SSE to it. `TEST_LOG=1` shows the
//! server's logs (filtered by `RUST_LOG`, default `info`): an in-process
//! server's beside its failing test's output, a child process's on stderr.
//!
//! `cargo test --test it http_errors::` runs one file's tests.

mod browser_support;
mod common;

mod browser;
mod browser_a11y;
mod browser_embed;
mod browser_tabs;
mod container;
mod deploy;
mod durable;
mod embed_ops;
mod hardening;
mod http;
mod http_assets;
mod http_config;
mod http_errors;
mod http_i18n;
mod http_props;
mod redis;
mod sse;
