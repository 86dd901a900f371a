//! `cairn checkpoint ...`

use super::{value_or_stdin, yes_no, Ctx};
use crate::cli::CheckpointCmd;
use crate::exit;
use crate::output::{Out, Outcome};

pub fn run(ctx: &Ctx, cmd: CheckpointCmd) -> Outcome {
    let store = match cmd {
        CheckpointCmd::Get { .. } => ctx.open_for_reading()?,
        _ => ctx.open()?,
    };
    match cmd {
        CheckpointCmd::Set { job, value, kind } => {
            let value = value_or_stdin(value, &kind)?;
            store.checkpoint(&job).set(value)?;
            Ok(exit::OK)
        }
        CheckpointCmd::Get { job } => match store.checkpoint(&job).get::<Vec<u8>>()? {
            Some(value) => {
                let mut out = Out::new();
                out.bytes(&value)?;
                out.flush()?;
                Ok(exit::OK)
            }
            None => Ok(exit::NO),
        },
        CheckpointCmd::Del { job } => Ok(yes_no(store.checkpoint(&job).delete()?)),
    }
}
