//! `antibody eval`: scores the swarm against the scenarios' answer keys and
//! prints a table (or JSON), with a progress bar on a terminal.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use engine::{
    catalog::Catalog,
    evaluation::{Extra, evaluate},
    twin::Topology,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::configuration::EvalArgs;

pub async fn run(args: EvalArgs) -> anyhow::Result<()> {
    let topology = Topology::embedded()?;
    let catalog = match &args.scenarios {
        Some(dir) => Catalog::with_scenarios_from(dir, &topology)
            .with_context(|| format!("reading scenarios from {}", dir.display()))?,
        None => Catalog::embedded(&topology)?,
    };
    let bar = if std::io::stderr().is_terminal() && !args.json {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} incidents closed [{elapsed}] {wide_bar}")
            .expect("a valid template"),
    );
    let evaluation = evaluate(
        catalog,
        args.runs as usize,
        Extra {
            random: args.random as usize,
            healthy: args.healthy as usize,
        },
        args.seed,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .await?;
    bar.finish_and_clear();
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&evaluation)?)
    } else {
        let random = match &evaluation.random {
            Some(random) => format!(", and {} random scenarios once each", random.scenarios),
            None => String::new(),
        };
        format!(
            "{}\n{} runs per scenario{random}, seed {}\n",
            evaluation.table(),
            evaluation.runs,
            evaluation.seed
        )
    };
    // A closed pipe (`| head`) is the reader's choice, not an error.
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
