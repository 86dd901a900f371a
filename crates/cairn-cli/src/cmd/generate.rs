//! Completions and the man page, generated from the clap definitions.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit;
use crate::output::{Out, Outcome};

pub fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cairn", &mut buf);
    let mut out = Out::new();
    out.bytes(&buf)?;
    out.flush()?;
    Ok(exit::OK)
}

pub fn man() -> Outcome {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(crate::output::Failure::io("rendering the man page"))?;
    let mut out = Out::new();
    out.bytes(&buf)?;
    out.flush()?;
    Ok(exit::OK)
}
