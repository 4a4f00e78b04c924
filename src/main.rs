use std::process::ExitCode;

use clap::Parser;
use weight_converter::config::Command;
use weight_converter::{Config, Server, healthcheck, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Some(Command::Healthcheck) = config.subcommand() {
        return healthcheck(config.local_target()).await;
    }
    telemetry::init_logs(config.log_format());
    let server = match Server::bind(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("weight-converter: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = shutdown_signal();
    match server.local_addr() {
        // Scripts and tests wait for this line and read the real port from it.
        Ok(addr) => println!("weight-converter listening on http://{addr}"),
        Err(e) => eprintln!("weight-converter: {e}"),
    }
    match server.serve(stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weight-converter: {e}");
            ExitCode::FAILURE
        }
    }
}
