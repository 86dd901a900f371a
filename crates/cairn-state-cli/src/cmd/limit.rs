//! `cairn limit NAME --rate R -- CMD`: run a command once a shared rate limit has a slot;
//! `cairn limit take`: take a slot, or say when the next one frees.

use std::time::Duration;

use super::lock::Running;
use super::{yes_no, Ctx};
use crate::cli::{LimitArgs, LimitCmd};
use crate::exit;
use crate::output::{note, Failure, Out, Outcome};

pub fn run(ctx: &Ctx, args: LimitArgs) -> Outcome {
    if let Some(LimitCmd::Take { name, rate, burst }) = args.take {
        return take(ctx, &name, rate, burst);
    }
    // Clap requires these without `take`: absent, they are a usage error all the same.
    let (Some(name), Some(rate)) = (args.name, args.rate) else {
        return Err(Failure::Usage("cairn limit needs NAME and --rate".into()));
    };
    let store = ctx.open()?;
    let limiter = store.limiter(&name, rate).burst(args.burst);
    if !limiter.acquire(args.wait)? {
        let within = args.wait.map(cairn::format_duration).unwrap_or_default();
        note(format_args!("limit '{name}' had no free slot within {within}; not running the command"));
        return Ok(args.held_exit);
    }
    // Nothing is held while the command runs: the slot is taken, the store can close.
    drop(limiter);
    drop(store);
    Ok(exit::of_command(Running::start(&args.command)?.wait()?))
}

fn take(ctx: &Ctx, name: &str, rate: cairn::Rate, burst: u32) -> Outcome {
    let store = ctx.open()?;
    let decision = store.limiter(name, rate).burst(burst).take()?;
    let retry_ms = decision.retry_after().map(ceil_millis);
    if ctx.json {
        let v = match retry_ms {
            None => serde_json::json!({"taken": true}),
            Some(ms) => serde_json::json!({"taken": false, "retry_after_ms": ms}),
        };
        Out::new().json(&v)?;
    } else if let Some(ms) = retry_ms {
        note(format_args!(
            "limit '{name}' has no free slot; the next frees in {}",
            cairn::format_duration(Duration::from_millis(ms))
        ));
    }
    Ok(yes_no(decision.taken()))
}

/// Whole milliseconds, rounded up: waiting that long always finds the slot free.
fn ceil_millis(d: Duration) -> u64 {
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}
