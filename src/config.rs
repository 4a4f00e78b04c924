//! Every setting, as a flag with an environment fallback. `--help` is the
//! reference; the README's table is made from it.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "weight-converter",
    version,
    about = "The st.session_state weight converter, live over htmx and SSE."
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on; 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Sessions idle this long are gone (e.g. `90s`, `24h`).
    #[arg(long, env = "SESSION_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// Most sessions alive at once; the least recently used goes first.
    #[arg(long, env = "MAX_SESSIONS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_sessions: u64,

    /// Most open event streams, over all sessions.
    #[arg(long, env = "MAX_STREAMS", default_value_t = 10_000)]
    pub max_streams: usize,

    /// Most open event streams on one session.
    #[arg(long, env = "MAX_STREAMS_PER_SESSION", default_value_t = 64)]
    pub max_streams_per_session: usize,

    /// Time limit for ordinary requests (not event streams).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
}

impl Config {
    /// Defaults for tests: a free port on loopback.
    pub fn for_tests() -> Self {
        let mut config = Self::parse_from(["weight-converter"]);
        config.port = 0;
        config
    }
}
