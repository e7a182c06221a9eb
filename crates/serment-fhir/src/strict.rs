//! Strict JSON parsing: a [`serde_json::Value`] built by a visitor that refuses
//! duplicate object keys and remembers where it is, so the error names the path
//! (`entry[3].resource.id`).
//!
//! RFC 8259 §4 says object names "SHOULD be unique" and leaves duplicates to the
//! implementation; serde_json keeps the last one, so `{"resourceType":"Patient",
//! "resourceType":"Bundle"}` would read as a Bundle. A FHIR importer must not guess:
//! FHIR R4 §2.6.2 (JSON) forbids repeating a property, so a duplicate is an error.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// One step of a JSON path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Formats a path as `entry[3].resource.id` (the root is the empty string).
fn format_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The first duplicate key found: (path of the object, key).
pub(crate) type Duplicate = (String, String);

/// Parses `json` into a [`Value`], refusing duplicate keys in any object.
///
/// On a duplicate key, returns `Err(Ok((path, key)))`; on any other JSON error
/// (syntax, recursion limit, invalid UTF-8), `Err(Err(serde_json::Error))`.
pub(crate) fn from_slice(json: &[u8]) -> Result<Value, Result<Duplicate, serde_json::Error>> {
    let state = State {
        path: RefCell::new(Vec::new()),
        duplicate: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed = StrictValue { state: &state }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => match state.duplicate.into_inner() {
            Some(dup) => Err(Ok(dup)),
            None => Err(Err(e)),
        },
    }
}

struct State {
    path: RefCell<Vec<Seg>>,
    duplicate: RefCell<Option<Duplicate>>,
}

/// A [`DeserializeSeed`] producing a [`Value`] with the checks above.
#[derive(Clone, Copy)]
struct StrictValue<'s> {
    state: &'s State,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            self.state.path.borrow_mut().push(Seg::Index(out.len()));
            let next = seq.next_element_seed(self);
            self.state.path.borrow_mut().pop();
            match next? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                let path = format_path(&self.state.path.borrow());
                let message = format!("duplicate key {key:?}");
                *self.state.duplicate.borrow_mut() = Some((path, key));
                return Err(de::Error::custom(message));
            }
            self.state.path.borrow_mut().push(Seg::Key(key.clone()));
            let value = map.next_value_seed(self);
            self.state.path.borrow_mut().pop();
            out.insert(key, value?);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn same_value_as_serde_json_without_duplicates() {
        let text = br#"{"a":[1,-2,3.5,true,null,"x",{"b":{}}],"c":"\u00e9"}"#;
        let strict = from_slice(text).unwrap();
        let lax: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(strict, lax);
    }

    #[test]
    fn duplicate_names_its_path() {
        let dup = from_slice(br#"{"resourceType":"Patient","resourceType":"Bundle"}"#)
            .unwrap_err()
            .unwrap();
        assert_eq!(dup, (String::new(), "resourceType".to_owned()));
        let dup = from_slice(br#"{"entry":[{},{"resource":{"id":"a","meta":{"x":1,"x":2}}}]}"#)
            .unwrap_err()
            .unwrap();
        assert_eq!(dup, ("entry[1].resource.meta".to_owned(), "x".to_owned()));
    }

    #[test]
    fn syntax_errors_and_trailing_bytes_stay_json_errors() {
        assert!(from_slice(b"{").unwrap_err().is_err());
        assert!(from_slice(b"{} x").unwrap_err().is_err());
        let deep = "[".repeat(200) + &"]".repeat(200);
        let e = from_slice(deep.as_bytes()).unwrap_err().unwrap_err();
        assert!(e.to_string().starts_with("recursion limit exceeded"), "{e}");
    }
}
