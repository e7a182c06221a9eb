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
                 "suite": serment_core::SUITE_NAME,
                 "key_wrap_suite_id": serment_core::HYBRID_SUITE_ID,
                 "key_wrap_suite": serment_core::HYBRID_SUITE_NAME }),
        &format!(
            "serment {} (commit {commit})\nprotocol format {}\n  documents: suite {} ({})\n  key \
             wraps:  suite {} ({}: post-quantum hybrid, ML-KEM-768 + X25519, to every device \
             with an X-Wing key; suite 1 only for an older device without one)",
            env!("CARGO_PKG_VERSION"),
            serment_core::FORMAT_VERSION,
            serment_core::SUITE_ID,
            serment_core::SUITE_NAME,
            serment_core::HYBRID_SUITE_ID,
            serment_core::HYBRID_SUITE_NAME,
        ),
    );
    Ok(())
}
