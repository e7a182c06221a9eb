#!/bin/sh
# Builds the patient's page's WebAssembly (issue 13 §2): serment-wasm (the Rust client core and
# its browser transport) for wasm32-unknown-unknown in release, bound by wasm-bindgen (the CLI
# pinned to the library's version, as .ci/run installs it) with `--target web` into
# crates/serment-server/web/pkg/. The output is committed: `serment serve` embeds it, so a
# plain `cargo build` needs no wasm toolchain. Run it after any change to the client core.
#
#   tools/build-web.sh            # rebuild crates/serment-server/web/pkg
#   tools/build-web.sh OUT_DIR    # build into OUT_DIR instead
#   tools/build-web.sh --check    # rebuild into a temporary directory and fail (exit 1) unless
#                                 # the committed web/pkg is byte for byte what the sources give
#                                 # (.ci/run runs this: the page the server embeds, and whose
#                                 # bundle hash it logs, is the one the sources build)
#
# The build is reproducible on one toolchain: the paths of this checkout and of the cargo home
# are remapped (--remap-path-prefix) so the panic locations inside the wasm do not depend on
# where the repository or the registry sit.
set -eu
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
else
    out="${1:-crates/serment-server/web/pkg}"
fi
target_dir="${CARGO_TARGET_DIR:-target}/wasm-web"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
# simd128: WebAssembly SIMD, as .cargo/config.toml sets for every wasm build (this RUSTFLAGS
# replaces that file's flags, so it repeats it).
RUSTFLAGS="-C target-feature=+simd128 --remap-path-prefix=$PWD=/serment --remap-path-prefix=$cargo_home=/cargo" \
    CARGO_TARGET_DIR="$target_dir" \
    cargo build --release --locked -p serment-wasm --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir "$out" \
    "$target_dir/wasm32-unknown-unknown/release/serment_wasm.wasm"
ls -l "$out"
if [ "$check" = 1 ]; then
    stale=0
    for f in serment_wasm.js serment_wasm_bg.wasm; do
        if ! cmp -s "$out/$f" "crates/serment-server/web/pkg/$f"; then
            echo "crates/serment-server/web/pkg/$f is not what the sources build: run tools/build-web.sh and commit web/pkg" >&2
            stale=1
        fi
    done
    [ "$stale" = 0 ] && echo "web/pkg is fresh"
    exit "$stale"
fi
