//! `cairn`: crash-safe state for shell scripts. This binary only parses, calls the `cairn`
//! library and prints; every behaviour lives in the library.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod cmd;
mod exit;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::output::Failure;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and succeed.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(exit::OK);
        }
        Err(e) => {
            // One line, like every other failure; clap's usage block is a --help away.
            let rendered = e.render().to_string();
            let message: Vec<&str> =
                rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            let message = message.join(" ");
            eprintln!("cairn: {}; see cairn --help", message.trim_start_matches("error: "));
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
