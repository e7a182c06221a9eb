//! Printing results: human text, or one JSON object with `--json`.

use std::io::Write;

use serde_json::Value;

/// Prints `value` as JSON when `json`, else the human `text`.
pub(crate) fn emit(json: bool, value: &Value, text: &str) {
    if json {
        line(&value.to_string());
    } else if !text.is_empty() {
        line(text);
    }
}

/// Writes one line to stdout. A closed pipe (`serment ls | head -1`) is not an error worth a
/// panic: the reader has gone, so the output is dropped.
pub(crate) fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}
