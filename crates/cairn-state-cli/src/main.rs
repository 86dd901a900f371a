//! `cairn`: crash-safe state for shell scripts. This binary only parses, calls the `cairn`
//! library and prints; every behaviour lives in the library.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod cmd;
mod exit;
mod output;
mod parse_error;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::output::Failure;

/// `Cli::try_parse`, without freeing the parser: the command tree (every subcommand, argument
/// and help text) and the matches are a few thousand allocations that freeing would walk
/// through only for the process to exit, some 15% of `cairn --version`'s instructions
/// (callgrind). The operating system takes them back at exit.
fn parse() -> Result<cli::Cli, clap::Error> {
    let mut command = cli::Cli::command();
    let parsed = command.try_get_matches_from_mut(std::env::args_os()).and_then(|mut matches| {
        let cli = cli::from_matches(&mut matches).map_err(|e| e.format(&mut command));
        std::mem::forget(matches);
        cli
    });
    std::mem::forget(command);
    parsed
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and succeed.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(exit::OK);
        }
        Err(e) => {
            // One line, like every other failure; clap's usage block is a --help away.
            let argv: Vec<_> = std::env::args_os().collect();
            eprintln!("cairn: {}", parse_error::one_line(&e, &argv));
            return ExitCode::from(exit::USAGE);
        }
    };
    match cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::BrokenPipe) => ExitCode::from(exit::OK),
        Err(failure) => {
            eprintln!("cairn: {failure}");
            ExitCode::from(failure.code())
        }
    }
}
