//! Every setting, as a flag with an environment fallback, grouped by what
//! it governs. `--help` is the reference; the README's table follows it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser};

/// The settings, made only by parsing flags and the environment, so every
/// value in it has been checked; the fields are the crate's own.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "weight-converter",
    version,
    about = "The st.session_state weight converter, live over htmx and SSE."
)]
pub struct Config {
    // First, so that clap lists them under "Options", before the groups'
    // headings (a heading holds for every argument after it).
    /// Proxies whose `X-Forwarded-For` (and `X-Forwarded-Proto`/`-Host`)
    /// are believed: addresses or networks, comma-separated
    /// (`10.0.0.0/8,127.0.0.1`). Empty: every peer is the client itself.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network)]
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,

    /// Serve `/metrics` on this address (`127.0.0.1:9100`) instead of the
    /// app's own port, so it need not be public.
    #[arg(long, env = "METRICS_ADDR")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    #[command(flatten)]
    pub(crate) listen: Listen,

    #[command(flatten)]
    pub(crate) timeouts: Timeouts,

    #[command(flatten)]
    pub(crate) sessions: Sessions,

    #[command(flatten)]
    pub(crate) streams: Streams,

    #[command(flatten)]
    pub(crate) storage: Storage,

    #[command(flatten)]
    pub(crate) embedding: Embedding,

    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Listening")]
pub(crate) struct Listen {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub(crate) host: IpAddr,

    /// Port to listen on; 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub(crate) port: u16,

    /// Most connections open at once; past it, new ones are closed at
    /// once. Lowered to fit the open-file limit, which is raised to its
    /// hard limit at start.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_connections: u64,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Time limits")]
pub(crate) struct Timeouts {
    /// Time limit for ordinary requests (not event streams).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "10s")]
    pub(crate) request_timeout: Timeout,

    /// A client must send a whole request head within this time (from its
    /// first byte, or from connecting), or it is disconnected.
    #[arg(long, env = "HEADER_TIMEOUT", default_value = "10s")]
    pub(crate) header_timeout: Timeout,

    /// A keep-alive connection with no request for this long is closed.
    #[arg(long, env = "IDLE_TIMEOUT", default_value = "60s")]
    pub(crate) idle_timeout: Timeout,

    /// On SIGTERM, the process ends within this time, whatever clients
    /// hold; event streams end spread over it.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "2s")]
    pub(crate) shutdown_grace: Timeout,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sessions")]
pub(crate) struct Sessions {
    /// Sessions idle this long are gone (e.g. `90s`, `24h`).
    #[arg(long, env = "SESSION_TTL", default_value = "24h")]
    pub(crate) session_ttl: Lifetime,

    /// Sessions never changed and idle this long are gone (at most
    /// `SESSION_TTL`): a flood of new sessions then costs little.
    #[arg(long, env = "UNCHANGED_SESSION_TTL", default_value = "1h")]
    pub(crate) unchanged_session_ttl: Lifetime,

    /// Most sessions alive at once; the least recently used goes first.
    /// In memory and under `DATA_DIR`: with Redis, bound memory with `maxmemory`.
    #[arg(long, env = "MAX_SESSIONS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_sessions: u64,

    /// Most new sessions one client may start per minute (in a burst, or
    /// one every 60/N seconds); past it, `GET /` answers 429.
    #[arg(long, env = "NEW_SESSIONS_PER_MINUTE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) new_sessions_per_minute: u32,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Event streams")]
pub(crate) struct Streams {
    /// Most open event streams, over all sessions.
    #[arg(long, env = "MAX_STREAMS", default_value_t = 10_000)]
    pub(crate) max_streams: usize,

    /// Most open event streams on one session, of views that can write.
    #[arg(long, env = "MAX_STREAMS_PER_SESSION", default_value_t = 64)]
    pub(crate) max_streams_per_session: usize,

    /// Most open event streams on one session's read-only link: a budget
    /// apart from the owner's, so viewers never lock the owner out.
    #[arg(long, env = "MAX_READERS_PER_SESSION", default_value_t = 100)]
    pub(crate) max_readers_per_session: usize,

    /// Most open event streams of one client, over all sessions, so that
    /// one client cannot take every stream. A client is an IPv4 address or
    /// an IPv6 /64 (see `TRUSTED_PROXIES`).
    #[arg(long, env = "MAX_STREAMS_PER_CLIENT", default_value_t = 256)]
    pub(crate) max_streams_per_client: usize,

    /// How often an idle event stream sends a keep-alive comment.
    #[arg(long, env = "SSE_KEEP_ALIVE", default_value = "15s")]
    pub(crate) sse_keep_alive: Timeout,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Where sessions are kept")]
pub(crate) struct Storage {
    /// Keep sessions on disk in this folder (created if missing), so they
    /// survive a restart: a change is answered once it is fsynced. One
    /// server per folder; not with `REDIS_URL`. Unset or empty (and no
    /// `REDIS_URL`): sessions live in this process's memory.
    #[arg(long, env = "DATA_DIR", value_parser = parse_data_dir)]
    pub(crate) data_dir: Option<PathBuf>,

    /// Keep sessions in Redis, shared by every replica with the same URL:
    /// `redis://host:6379/0` or `redis+unix:///run/redis.sock`. Unset:
    /// sessions live in this process's memory.
    #[arg(long, env = "REDIS_URL", value_parser = parse_redis_url)]
    pub(crate) redis_url: Option<String>,

    /// Prefix of every Redis key and channel, so that several apps can
    /// share one Redis (pub/sub ignores the db number).
    #[arg(long, env = "REDIS_PREFIX", default_value = "wc:", value_parser = parse_redis_prefix)]
    pub(crate) redis_prefix: String,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Embedding in other sites")]
pub(crate) struct Embedding {
    /// Base of the absolute URLs in embeddable fragments, e.g.
    /// `https://weights.example.com`. Unset: taken from the request's Host.
    #[arg(long, env = "PUBLIC_URL", value_parser = parse_public_url)]
    pub(crate) public_url: Option<String>,

    /// Other sites' origins that may embed fragments and post changes,
    /// comma-separated (`https://a.example,https://b.example`). Empty: same origin only.
    #[arg(long, env = "ALLOW_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub(crate) allow_origins: Vec<String>,

    /// Who may show the app in an iframe: the CSP `frame-ancestors` sources.
    #[arg(long, env = "FRAME_ANCESTORS", default_value = "'self'", value_parser = parse_frame_ancestors)]
    pub(crate) frame_ancestors: String,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Checks that a server on HOST:PORT answers `/healthz`; exits 0 if so.
    /// For container health checks, which have no shell or curl.
    Healthcheck,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-26T02:47:42.123456Z  INFO request{request_id=…}: target: message key=value …`
    Text,
    /// One JSON object per line.
    Json,
}

/// A duration from `LEAST_MS` to `MOST_MS` milliseconds, both included:
/// checked once, where the flag is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BoundedDuration<const LEAST_MS: u64, const MOST_MS: u64>(Duration);

/// A session lifetime: at least a second (Redis expiry counts whole
/// milliseconds, and a shorter life makes every new session a 404 before
/// its page loads), at most a year (beyond, clock arithmetic overflows).
pub type Lifetime = BoundedDuration<1_000, YEAR_MS>;

/// A timeout, grace or interval: more than zero, at most a day.
pub type Timeout = BoundedDuration<1, DAY_MS>;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// humantime's year (365.25 days), so that `1year` is a year.
const YEAR_MS: u64 = 31_557_600 * 1000;

impl<const LEAST_MS: u64, const MOST_MS: u64> BoundedDuration<LEAST_MS, MOST_MS> {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl<const LEAST_MS: u64, const MOST_MS: u64> FromStr for BoundedDuration<LEAST_MS, MOST_MS> {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (least, most) = (Duration::from_millis(LEAST_MS), Duration::from_millis(MOST_MS));
        let duration = humantime::parse_duration(text.trim())
            .map_err(|e| format!("{e} (write it like 90s, 15m or 24h)"))?;
        if duration < least {
            return Err(format!("must be at least {}", humantime::format_duration(least)));
        }
        if duration > most {
            return Err(format!("must be at most {}", humantime::format_duration(most)));
        }
        Ok(Self(duration))
    }
}

/// `10.0.0.0/8`, or one address (`127.0.0.1`, `::1`) as its own network.
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or a network like 10.0.0.0/8"))
}

/// Any path; empty means unset, so that an image's `DATA_DIR` can be
/// switched off (`DATA_DIR=`) where it runs with Redis.
fn parse_data_dir(text: &str) -> Result<PathBuf, String> {
    Ok(text.into())
}

/// Checked when parsed, so a typo fails at start-up, not at the first request.
fn parse_redis_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    redis::Client::open(text).map(|_| text.to_owned()).map_err(|e| format!("not a Redis URL: {e}"))
}

fn parse_redis_prefix(text: &str) -> Result<String, String> {
    let ok = text.len() <= 64 && text.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(text.to_owned())
    } else {
        Err("use at most 64 printable ASCII characters, no spaces".to_owned())
    }
}

/// `scheme://host[:port]` with nothing after it.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else { return false };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

/// An empty entry (`ALLOW_ORIGINS=""`) allows nothing.
fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/');
    if text.is_empty() || is_origin(text) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not an origin like https://example.com"))
    }
}

fn parse_public_url(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/');
    is_origin(text)
        .then(|| text.to_owned())
        .ok_or_else(|| format!("{text:?} is not a base URL like https://example.com"))
}

/// Characters that could end the CSP directive or inject another are refused.
fn parse_frame_ancestors(text: &str) -> Result<String, String> {
    let text = text.trim();
    let safe =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',' || b == b' ');
    if safe { Ok(text.to_owned()) } else { Err(format!("{text:?} is not a list of CSP sources")) }
}

impl Config {
    /// A subcommand in place of serving, if one was given.
    pub fn subcommand(&self) -> Option<&Command> {
        self.command.as_ref()
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// `DATA_DIR`, unless unset or empty.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.storage.data_dir.as_deref().filter(|dir| !dir.as_os_str().is_empty())
    }

    /// Where a local client reaches this server (`0.0.0.0` → loopback).
    pub fn local_target(&self) -> std::net::SocketAddr {
        let host = match self.listen.host {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        (host, self.listen.port).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        assert_eq!(parse_origin("https://a.example/"), Ok("https://a.example".to_owned()));
        assert_eq!(parse_origin("http://127.0.0.1:8080"), Ok("http://127.0.0.1:8080".to_owned()));
        for bad in ["*", "a.example", "https://a.example/path", "javascript://x", "https://"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frame_ancestors_cannot_inject_directives() {
        assert!(parse_frame_ancestors("'self' https://a.example").is_ok());
        assert!(parse_frame_ancestors("'self'; script-src *").is_err());
    }

    #[test]
    fn nonsense_durations_are_refused() {
        let parses =
            |flag: &str, value: &str| Config::try_parse_from(["weight-converter", flag, value]).is_ok();
        for flag in [
            "--session-ttl",
            "--unchanged-session-ttl",
            "--request-timeout",
            "--header-timeout",
            "--idle-timeout",
            "--shutdown-grace",
            "--sse-keep-alive",
        ] {
            for bad in ["0s", "0", "soon", "-1s", "2years", "584942417355years"] {
                assert!(!parses(flag, bad), "{flag} {bad}");
            }
        }
        // Lifetimes are whole seconds at least; timeouts may be shorter.
        assert!(!parses("--session-ttl", "999ms"));
        assert!(parses("--session-ttl", "1year"));
        assert!(parses("--session-ttl", " 1s "));
        assert!(parses("--header-timeout", "250ms"));
        assert!(!parses("--idle-timeout", "25h"));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let config =
            Config::try_parse_from(["weight-converter", "--trusted-proxies", "10.0.0.0/8, ::1"]).unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
        assert!(Config::try_parse_from(["weight-converter", "--trusted-proxies", "proxy.local"]).is_err());
    }

    #[test]
    fn redis_urls_are_checked() {
        for good in ["redis://127.0.0.1:6379/0", "redis+unix:///run/redis.sock", "unix:///tmp/r.sock"] {
            assert!(parse_redis_url(good).is_ok(), "{good}");
        }
        for bad in ["127.0.0.1:6379", "http://x", "redis://"] {
            assert!(parse_redis_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn help_lists_each_flag_under_its_own_heading() {
        let help = <Config as clap::CommandFactory>::command().render_help().to_string();
        let at = |text: &str| help.find(text).unwrap_or_else(|| panic!("no {text:?} in {help}"));
        let headings = ["Options:", "Listening:", "Time limits:", "Sessions:", "Event streams:"];
        let headings = headings.into_iter().chain(["Where sessions are kept:", "Embedding in other sites:"]);
        let places: Vec<usize> = headings.map(at).collect();
        assert!(places.is_sorted(), "{help}");
        for (flag, heading) in
            [("--log-format", 0), ("--port", 1), ("--idle-timeout", 2), ("--frame-ancestors", 6)]
        {
            let after = places.get(heading + 1).copied().unwrap_or(help.len());
            assert!((places[heading]..after).contains(&at(flag)), "{flag}: {help}");
        }
    }

    #[test]
    fn flags_have_env_fallbacks() {
        let config =
            Config::try_parse_from(["weight-converter", "--allow-origins", "https://a.example,http://b:1"]);
        assert_eq!(config.unwrap().embedding.allow_origins, ["https://a.example", "http://b:1"]);
    }
}
