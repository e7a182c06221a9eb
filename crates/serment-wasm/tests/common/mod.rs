//! The vector files, read from `tests/vectors/` (shared by both vector tests).

use std::collections::BTreeMap;
use std::path::Path;

use serment_wasm::vectors::FILES;

pub(crate) fn vector_files() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    FILES
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(f))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.join(f).display()));
            ((*f).to_owned(), text)
        })
        .collect()
}
