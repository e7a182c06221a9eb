//! Printing results: human text, or one JSON object with `--json`.

use std::io::Write;

use serde_json::Value;

/// The version of the `--json` contract (docs/JSON.md), carried as `schema` in every JSON object
/// the CLI prints, errors included. Bumped when a field changes meaning or disappears; adding a
/// field is not a change of version.
pub(crate) const JSON_SCHEMA: u32 = 1;

/// What a command run inside `serment agent` would have printed (see [`capture`]).
#[derive(Debug, Default)]
pub(crate) struct Captured {
    /// The JSON object of [`emit`], without `schema`.
    pub(crate) json: Option<Value>,
    /// The human text of [`emit`].
    pub(crate) text: String,
    /// The notes of [`note`], each one line or more, in order.
    pub(crate) notes: Vec<String>,
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's [`emit`] and [`note`] kept instead of printed: the agent runs a
/// command for a CLI process and sends it what to print (PROTOCOL.md §13).
pub(crate) fn capture<T>(f: impl FnOnce() -> T) -> (T, Captured) {
    CAPTURE.with(|c| *c.borrow_mut() = Some(Captured::default()));
    let r = f();
    let got = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (r, got)
}

/// Prints a note for the user on stderr (or keeps it, under [`capture`]).
pub(crate) fn note(text: &str) {
    let kept = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(cap) => {
            cap.notes.push(text.to_owned());
            true
        }
        None => false,
    });
    if !kept {
        eprintln!("{text}");
    }
}

/// Prints `value` as JSON (with [`JSON_SCHEMA`] added) when `json`, else the human `text`.
pub(crate) fn emit(json: bool, value: &Value, text: &str) {
    let kept = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(cap) => {
            cap.json = Some(value.clone());
            text.clone_into(&mut cap.text);
            true
        }
        None => false,
    });
    if kept {
        return;
    }
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

/// `s` safe to print on a terminal: control characters (C0, DEL, C1) and the bidirectional
/// overrides and isolates (U+202A-202E, U+2066-2069), which an author could use to redraw or
/// reorder what the reader sees, are shown as `\u{..}` escapes. For text that a document's
/// author or the server controls (titles, MIME types).
pub(crate) fn safe(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if bad(c) {
                    format!("\\u{{{:x}}}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(safe("Bilan lipidique"), "Bilan lipidique");
        assert_eq!(safe("a\rb\u{1b}[2Kc"), "a\\u{d}b\\u{1b}[2Kc");
        assert_eq!(safe("x\u{202e}y\u{2066}"), "x\\u{202e}y\\u{2066}");
        assert_eq!(safe("\u{85}"), "\\u{85}");
        assert_eq!(safe("Résultat é"), "Résultat é");
    }
}
