//! Completions and the man pages, generated from the clap definitions.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit;
use crate::output::{Failure, Out, Outcome};

pub fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cairn", &mut buf);
    let mut out = Out::new();
    out.bytes(&buf)?;
    out.flush()?;
    Ok(exit::OK)
}

/// The page of `cairn` or of the subcommand named by `path`; or, with `dir`, every page
/// written there (hidden subcommands left out), the files listed on stdout.
pub fn man(path: &[String], dir: Option<&Path>) -> Outcome {
    let mut command = Cli::command().disable_help_subcommand(true);
    // Gives every subcommand its full name ("cairn-cache-get"), which titles its page.
    command.build();
    let mut out = Out::new();
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(Failure::io(format!("creating {}", dir.display())))?;
        let mut pages = Vec::new();
        collect(&command, &mut pages);
        for page in pages {
            let man = page_of(page);
            let file = man
                .generate_to(dir)
                .map_err(Failure::io(format!("writing a man page in {}", dir.display())))?;
            out.line(file.display())?;
        }
    } else {
        let mut page = &command;
        for (i, name) in path.iter().enumerate() {
            page = page.find_subcommand(name).filter(|c| !c.is_hide_set()).ok_or_else(|| {
                let parent: Vec<&str> =
                    std::iter::once("cairn").chain(path[..i].iter().map(String::as_str)).collect();
                Failure::Usage(format!(
                    "{} has no subcommand '{name}'; see {} --help",
                    parent.join(" "),
                    parent.join(" ")
                ))
            })?;
        }
        let mut buf = Vec::new();
        page_of(page.clone()).render(&mut buf).map_err(Failure::io("rendering the man page"))?;
        out.bytes(&buf)?;
    }
    out.flush()?;
    Ok(exit::OK)
}

/// A page, its source line naming cairn and its version (not the subcommand's name).
fn page_of(command: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(command).source(format!("cairn {}", env!("CARGO_PKG_VERSION")))
}

/// `command` and its visible subcommands, depth first.
fn collect(command: &clap::Command, pages: &mut Vec<clap::Command>) {
    pages.push(command.clone());
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages);
    }
}
