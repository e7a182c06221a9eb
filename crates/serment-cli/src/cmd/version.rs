//! `serment version`.

use serde_json::json;

use super::Ctx;
use crate::error::CliResult;
use crate::output::emit;

pub(crate) fn run(ctx: &Ctx) -> CliResult<()> {
    let commit = option_env!("SERMENT_GIT_COMMIT").unwrap_or("unknown");
    emit(
        ctx.json,
        &json!({ "version": env!("CARGO_PKG_VERSION"), "git_commit": commit,
                 "format_version": serment_core::FORMAT_VERSION, "suite_id": serment_core::SUITE_ID,
                 "suite": serment_core::SUITE_NAME }),
        &format!(
            "serment {} (commit {commit})\nprotocol format {} suite {} ({})",
            env!("CARGO_PKG_VERSION"),
            serment_core::FORMAT_VERSION,
            serment_core::SUITE_ID,
            serment_core::SUITE_NAME
        ),
    );
    Ok(())
}
