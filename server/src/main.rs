//! `antibody`: parses settings, starts logging, serves until SIGINT/SIGTERM
//! (or, with a subcommand, does that job instead).

use clap::Parser;
use server::{
    configuration::{Command, Settings},
    startup::Application,
    telemetry,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    if let Some(Command::Eval(args)) = settings.command {
        return server::eval::run(args).await;
    }
    telemetry::init(settings.log_format)?;
    let app = Application::build(settings).await?;
    app.run_until_stopped(server::startup::shutdown_signal()).await
}
