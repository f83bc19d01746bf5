//! Structured logging with `tracing`. `RUST_LOG` filters (default `info`);
//! an invalid filter is a start-up error, not a silent default.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::configuration::LogFormat;

/// Installs the global subscriber. Call once, at start.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => {
            EnvFilter::try_new(&spec).map_err(|e| anyhow::anyhow!("RUST_LOG=`{spec}` is not a valid filter: {e}"))?
        }
        Err(_) => EnvFilter::new("info"),
    };
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(fmt::layer()).try_init()?,
        LogFormat::Json => registry
            .with(fmt::layer().json().with_current_span(true).with_span_list(true))
            .try_init()?,
    }
    Ok(())
}
