//! Printing results: human text, or one JSON object with `--json`.

use std::io::Write;

use serde_json::Value;

/// The version of the `--json` contract (docs/JSON.md), carried as `schema` in every JSON object
/// the CLI prints, errors included. Bumped when a field changes meaning or disappears; adding a
/// field is not a change of version.
pub(crate) const JSON_SCHEMA: u32 = 1;

/// Prints `value` as JSON (with [`JSON_SCHEMA`] added) when `json`, else the human `text`.
pub(crate) fn emit(json: bool, value: &Value, text: &str) {
    if json {
        json_line(value.clone());
    } else if !text.is_empty() {
        line(text);
    }
}

/// Prints one JSON object on one line, with `"schema"` added.
pub(crate) fn json_line(mut value: Value) {
    if let Value::Object(m) = &mut value {
        m.insert("schema".into(), Value::from(JSON_SCHEMA));
    }
    line(&value.to_string());
}

/// Writes one line to stdout. A closed pipe (`serment ls | head -1`) is not an error worth a
/// panic: the reader has gone, so the output is dropped.
pub(crate) fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}
