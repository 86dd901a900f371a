//! A command line clap refused, as one stderr line like every other failure: clap's message,
//! its tip (a near name, `--` before a value), a tip of ours where clap has none, the usage when
//! arguments are missing, and the help to read: the subcommand's, not cairn's.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::CommandFactory;

use crate::cli::Cli;

/// The line to print after `cairn: ` for `error`, which clap raised parsing `argv`.
pub fn one_line(error: &clap::Error, argv: &[OsString]) -> String {
    let rendered = error.render().to_string();
    let (path, command) = failing_command(argv);
    let mut parts = vec![message(error, &rendered)];
    let tips: Vec<String> =
        rendered.lines().map(str::trim).filter(|l| l.starts_with("tip: ")).map(str::to_owned).collect();
    if tips.is_empty() {
        parts.extend(our_tip(error, &command));
    }
    parts.extend(tips);
    if missing_arguments(error.kind()) {
        if let Some(usage) = rendered.lines().find_map(|l| l.trim().strip_prefix("Usage: ")) {
            parts.push(format!("usage: {usage}"));
        }
    }
    parts.push(format!("see {} --help", path.join(" ")));
    parts.join("; ")
}

fn missing_arguments(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::MissingRequiredArgument | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand)
}

/// clap's message: its first paragraph on one line. (Where clap shows the whole help instead
/// of a message, a short one.)
fn message(error: &clap::Error, rendered: &str) -> String {
    if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return "arguments are missing".into();
    }
    let lines: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    lines.join(" ").trim_start_matches("error: ").to_owned()
}

/// The names of the deepest subcommand `argv` reached (`["cairn", "cache"]` for `cairn cache
/// gte`), and its definition: `argv` parsed again, ignoring errors.
fn failing_command(argv: &[OsString]) -> (Vec<String>, clap::Command) {
    let mut root = Cli::command().ignore_errors(true);
    let matches = root.try_get_matches_from_mut(argv.iter()).ok();
    let mut path = vec!["cairn".to_owned()];
    let mut command = root;
    let mut at = matches.as_ref();
    while let Some((name, sub_matches)) = at.and_then(clap::ArgMatches::subcommand) {
        let Some(sub) = command.find_subcommand(name).cloned() else { break };
        path.push(name.to_owned());
        command = sub;
        at = Some(sub_matches);
    }
    (path, command)
}

/// A tip where clap gives none: the nearest subcommand to a mistyped one (clap suggests only
/// near misses of its own measure, not `gte` for `get`), and `--` before the command that
/// `memo` and `lock` run.
fn our_tip(error: &clap::Error, command: &clap::Command) -> Option<String> {
    let given = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    match error.kind() {
        ErrorKind::InvalidSubcommand => {
            let typed = given(ContextKind::InvalidSubcommand)?;
            let near =
                nearest(typed, command.get_subcommands().flat_map(|s| s.get_name_and_visible_aliases()));
            match near.as_slice() {
                [] => None,
                [one] => Some(format!("tip: a similar subcommand exists: '{one}'")),
                many => Some(format!("tip: some similar subcommands exist: '{}'", many.join("', '"))),
            }
        }
        ErrorKind::UnknownArgument if command.get_positionals().any(clap::Arg::is_last_set) => {
            let arg = given(ContextKind::InvalidArg)?;
            Some(format!("tip: to run '{arg}', put '--' before it: '-- {arg}'"))
        }
        _ => None,
    }
}

/// The names closest to `typed` by edit distance (a transposition counts one), if close: one
/// edit for short names, two from six letters on.
fn nearest<'a>(typed: &str, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let within = if typed.chars().count() >= 6 { 2 } else { 1 };
    let scored: Vec<(usize, &str)> = names.map(|n| (strsim::osa_distance(typed, n), n)).collect();
    let best = scored.iter().map(|(d, _)| *d).min().unwrap_or(usize::MAX);
    if best > within {
        return Vec::new();
    }
    scored.into_iter().filter(|(d, _)| *d == best).map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line `cairn ARGS` fails with (`None` if it parses).
    fn line(args: &[&str]) -> Option<String> {
        let argv: Vec<OsString> =
            std::iter::once("cairn").chain(args.iter().copied()).map(Into::into).collect();
        let error = Cli::command().try_get_matches_from(&argv).err().filter(clap::Error::use_stderr)?;
        Some(one_line(&error, &argv))
    }

    #[test]
    fn a_mistyped_subcommand_gets_the_nearest_name_and_its_parents_help() {
        let got = line(&["cache", "gte", "k"]).unwrap();
        assert_eq!(
            got,
            "unrecognized subcommand 'gte'; tip: a similar subcommand exists: 'get'; see cairn cache --help"
        );
        // clap's own suggestion is kept.
        let got = line(&["cahe", "get", "k"]).unwrap();
        assert!(got.contains("tip: a similar subcommand exists: 'cache'"), "{got}");
        assert!(got.ends_with("; see cairn --help"), "{got}");
        // Nothing near: no tip.
        let got = line(&["ledger", "frobnicate"]).unwrap();
        assert_eq!(got, "unrecognized subcommand 'frobnicate'; see cairn ledger --help");
    }

    #[test]
    fn a_command_given_to_memo_or_lock_without_dashes_gets_a_tip_to_put_them() {
        let got = line(&["lock", "nightly", "./x.sh"]).unwrap();
        assert_eq!(
            got,
            "unexpected argument './x.sh' found; tip: to run './x.sh', put '--' before it: '-- ./x.sh'; \
             see cairn lock --help"
        );
        let got = line(&["memo", "--ttl", "1h", "ls", "-l"]).unwrap();
        assert!(got.contains("tip: to run 'ls', put '--' before it"), "{got}");
        assert!(got.ends_with("; see cairn memo --help"), "{got}");
    }

    #[test]
    fn clap_tips_and_the_subcommands_help_survive_on_one_line() {
        let got = line(&["cache", "get", "--bogus", "k"]).unwrap();
        assert_eq!(
            got,
            "unexpected argument '--bogus' found; tip: to pass '--bogus' as a value, use '-- --bogus'; \
             see cairn cache get --help"
        );
        let got = line(&["ledger", "count", "--state", "finished"]).unwrap();
        assert!(got.contains("[possible values: pending, claimed, done, failed, cancelled]"), "{got}");
        assert!(
            got.contains("; tip: a similar value exists: 'failed'; see cairn ledger count --help"),
            "{got}"
        );
        let got = line(&["-n", "x", "cache", "set", "k", "v", "--ttl", "5M"]).unwrap();
        assert!(got.contains("minutes or months") && got.ends_with("; see cairn cache set --help"), "{got}");
        for got in [line(&["ledger", "claim", "a"]), line(&["--busy-timeout", "5", "stats"])] {
            assert!(!got.clone().unwrap().contains('\n'), "{got:?}");
        }
    }

    #[test]
    fn missing_arguments_get_the_usage_and_the_subcommands_help() {
        assert_eq!(
            line(&["memo"]).unwrap(),
            "the following required arguments were not provided: <CMD>...; usage: cairn memo -- <CMD>...; \
             see cairn memo --help"
        );
        assert_eq!(
            line(&["lock", "nightly"]).unwrap(),
            "the following required arguments were not provided: <CMD>...; usage: cairn lock <NAME> -- \
             <CMD>...; see cairn lock --help"
        );
        let got = line(&[]).unwrap();
        assert!(got.starts_with("'cairn' requires a subcommand"), "{got}");
        assert!(got.ends_with("; see cairn --help"), "{got}");
    }

    #[test]
    fn every_command_given_no_arguments_fails_with_a_message_not_its_help() {
        let mut cli = Cli::command();
        cli.build();
        let mut paths = vec![Vec::new()];
        let mut i = 0;
        while i < paths.len() {
            let mut cmd = &cli;
            for name in &paths[i] {
                cmd = cmd.find_subcommand(name).unwrap();
            }
            assert!(!cmd.is_arg_required_else_help_set(), "cairn {:?} prints its help as an error", paths[i]);
            for sub in cmd.get_subcommands() {
                paths.push(paths[i].iter().cloned().chain([sub.get_name().to_owned()]).collect());
            }
            if let Some(got) = line(&paths[i].iter().map(String::as_str).collect::<Vec<_>>()) {
                let help =
                    std::iter::once("cairn").chain(paths[i].iter().map(String::as_str)).collect::<Vec<_>>();
                assert!(got.ends_with(&format!("; see {} --help", help.join(" "))), "{got}");
                assert!(got.starts_with(|c: char| c.is_ascii_lowercase() || c == '\''), "{got}");
            }
            i += 1;
        }
        assert!(paths.len() > 30, "{paths:?}");
    }
}
