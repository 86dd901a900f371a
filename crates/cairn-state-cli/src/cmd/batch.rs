//! `cairn batch`: JSON lines on stdin, one transaction.

use std::io;

use cairn::Batch;

use super::Ctx;
use crate::exit;
use crate::output::{Out, Outcome};

pub fn run(ctx: &Ctx) -> Outcome {
    // Everything is read and checked before the store is even opened: a writer killed
    // mid-stream, or a bad line, leaves the store untouched.
    let batch = Batch::parse(io::stdin().lock(), ctx.ns())?;
    let store = ctx.open()?;
    let applied = store.apply_batch(&batch)?;
    if ctx.json {
        let mut out = Out::new();
        out.json(&serde_json::json!({ "applied": applied }))?;
        out.flush()?;
    }
    Ok(exit::OK)
}
