use std::process::ExitCode;

use clap::Parser;
use mimalloc::MiMalloc;

use radshard::cli::{Cli, Command};
use radshard::config::Config;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(args) => match Config::load(args.config.as_deref()) {
            Ok(config) => {
                for w in &config.warnings {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: OK ({} clients, {} users)",
                    config.path.display(),
                    config.clients.len(),
                    config.users.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve(args) => {
            let mut config = match Config::load(args.config.config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            config.apply(&args.overrides());
            eprintln!("serve: not yet implemented");
            ExitCode::FAILURE
        }
    }
}
