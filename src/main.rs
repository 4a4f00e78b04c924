use clap::Parser;
use tracing_subscriber::EnvFilter;
use weight_converter::{Config, Server, shutdown_signal};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let server = Server::bind(Config::parse()).await?;
    // Tests and scripts wait for this line and read the real port from it.
    println!("weight-converter listening on http://{}", server.local_addr()?);
    server.serve(shutdown_signal()).await
}
