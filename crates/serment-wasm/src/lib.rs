//! Serment's client core compiled to WebAssembly for the patient's page (issue 13 §2-§3).
//!
//! - `client` (wasm32 only): `serment-client`'s session, unchanged, over the browser's transport
//!   (a synchronous `XMLHttpRequest` in a Web Worker), exported to `web/worker.js`;
//! - the checks of the test vectors (`tests/vectors/`, PROTOCOL.md §10), so that the browser
//!   build is proven to give the same verdicts as the native one: [`vectors::run`] natively,
//!   and `check_vectors` (a wasm-bindgen export taking and returning JSON) on wasm32.
//!
//! The test `wasm_vectors` builds this crate for `wasm32-unknown-unknown`, runs it under Node.js
//! and compares the two.
//!
//! The cryptography is `serment-core`'s, unchanged; only its AES-256-GCM backend differs on
//! wasm32 (RustCrypto's `aes-gcm` instead of `ring`, PROTOCOL.md §2.1).

pub mod vectors;

#[cfg(target_arch = "wasm32")]
pub mod client;

/// The JavaScript exports (wasm32 only).
#[cfg(target_arch = "wasm32")]
pub mod bindings {
    use std::collections::BTreeMap;

    use wasm_bindgen::prelude::wasm_bindgen;

    /// Checks the test vectors given as a JSON object `{ "<file name>": "<file text>", ... }`
    /// and returns the verdicts as a JSON array of `{file, case, expect, got}`, or
    /// `{"error": "<message>"}` when the input is not such an object or a vector is malformed.
    #[wasm_bindgen]
    pub fn check_vectors(files_json: &str) -> String {
        let files: BTreeMap<String, String> = match serde_json::from_str(files_json) {
            Ok(f) => f,
            Err(e) => return serde_json::json!({ "error": format!("input: {e}") }).to_string(),
        };
        match crate::vectors::run(&files) {
            Ok(v) => serde_json::to_string(&v)
                .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string()),
            Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
        }
    }
}
