#!/bin/sh
# Builds the patient's page's WebAssembly (issue 13 §2): serment-wasm (the Rust client core and
# its browser transport) for wasm32-unknown-unknown in release, bound by wasm-bindgen (the CLI
# pinned to the library's version, as .ci/run installs it) with `--target web` into
# crates/serment-server/web/pkg/. The output is committed: `serment serve` embeds it, so a
# plain `cargo build` needs no wasm toolchain. Run it after any change to the client core (no
# test checks yet that the committed files are fresh).
set -eu
cd "$(dirname "$0")/.."
out="${1:-crates/serment-server/web/pkg}"
target_dir="${CARGO_TARGET_DIR:-target}/wasm-web"
CARGO_TARGET_DIR="$target_dir" cargo build --release --locked -p serment-wasm --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir "$out" \
    "$target_dir/wasm32-unknown-unknown/release/serment_wasm.wasm"
ls -l "$out"
