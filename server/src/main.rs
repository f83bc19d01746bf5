//! `antibody`: parses settings, starts logging, serves until SIGINT/SIGTERM
//! (or, with a subcommand, does that job instead).

use std::process::ExitCode;

use clap::Parser;
use server::{
    configuration::{self, Command, Settings},
    startup::Application,
    telemetry,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let settings = Settings::parse();
    match settings.command {
        Some(Command::Eval(args)) => return server::eval::run(args).await.map(|()| ExitCode::SUCCESS),
        Some(Command::Loadtest(args)) => return server::loadtest::run(args).await.map(|()| ExitCode::SUCCESS),
        Some(Command::Timeline(args)) => return Ok(server::timeline_cli::run(*args).await),
        Some(Command::Simulate(args)) => return Ok(server::simulate_cli::run(args).await),
        Some(Command::Twin(args)) => {
            telemetry::init(settings.log_format)?;
            let configuration::TwinCommand::Serve(args) = args.command;
            return server::twin_serve::run(args).await.map(|()| ExitCode::SUCCESS);
        }
        None => {}
    }
    telemetry::init(settings.log_format)?;
    let app = Application::build(settings).await?;
    app.run_until_stopped(server::startup::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
