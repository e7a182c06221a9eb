//! Printing results: human text, or one JSON object with `--json`.

use serde_json::Value;

/// Prints `value` as JSON when `json`, else the human `text`.
pub(crate) fn emit(json: bool, value: &Value, text: &str) {
    if json {
        println!("{value}");
    } else if !text.is_empty() {
        println!("{text}");
    }
}
