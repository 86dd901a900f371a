//! `cairn ui`: open the store, bind, print the URL, serve (see the cairn-ui crate).

use std::io::Write as _;

use crate::cli::UiArgs;
use crate::output::{note, stdout_failure, Failure, Outcome};

use super::Ctx;

pub fn run(ctx: &Ctx, args: UiArgs) -> Outcome {
    let store = ctx.open_existing("show")?;
    let options = cairn_ui::Options::new()
        .listen(args.listen)
        .read_only(args.read_only)
        .allow_remote(args.allow_remote);
    let server = cairn_ui::Server::bind(&options).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => Failure::Usage(e.to_string()),
        _ => Failure::Io(format!("listening on {}", args.listen), e),
    })?;
    if !server.local_addr().ip().is_loopback() {
        note(format_args!(
            "warning: serving on {}, beyond this machine: anyone who reaches it and sees the token can steer the store",
            server.local_addr()
        ));
    }
    let url = server.url();
    // One line, flushed at once: a script or a test reads it to find the port.
    let mut out = std::io::stdout().lock();
    writeln!(out, "cairn ui: serving {url}").and_then(|()| out.flush()).map_err(stdout_failure)?;
    drop(out);
    if args.open {
        let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        if let Err(e) = std::process::Command::new(opener).arg(&url).spawn() {
            note(format_args!("cannot open a browser with {opener} ({e}): open the URL above"));
        }
    }
    server.serve(&store).map_err(Failure::io("serving"))?;
    Ok(crate::exit::OK)
}
