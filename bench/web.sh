#!/usr/bin/env bash
# bench/web.sh — the patient's page (issue 13 §5), side by side in one run, release builds:
#   1. opening a 10 MiB document in Chromium with the WebAssembly client (the page's worker:
#      log in, then fetch + every check + decrypt) vs native `serment get` (same server, same
#      document, same checks; the target is wasm ≤ 3× native);
#   2. a cold page load on loopback (a fresh browser: no HTTP or compiled-wasm cache), until the
#      page is usable and the wasm module is fetched (target < 1 s);
#   3. the wasm size (raw and gzip -9).
# Prints a markdown table with the CPU model and the load average (before and after): absolute
# times on a shared machine are noise, compare the ratio. Needs /usr/bin/chromium, node and
# tests/browser/node_modules (`npm ci` there), as the browser tests do.
#
#   bash bench/web.sh            # RUNS=5 by default
#   RUNS=9 bash bench/web.sh
#
# The page's wasm is the committed crates/serment-server/web/pkg (release, tools/build-web.sh),
# embedded in the release `serment` this script builds (unless SERMENT=/path/to/serment).
# Plain HTTP on 127.0.0.1 (a secure context for the browser; the CLI accepts loopback http):
# both clients see the same transport.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}
SIZE_MIB=${SIZE_MIB:-10}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/serment-web-bench.XXXXXX")
export SERMENT_PASSPHRASE=web-bench-passphrase
say() { printf '%s\n' "$*" >&2; }

if [ -z "${SERMENT:-}" ]; then
    say "building serment (release)…"
    (cd "$ROOT" && cargo build --release --locked -p serment-cli >&2)
    SERMENT="${CARGO_TARGET_DIR:-$ROOT/target}/release/serment"
fi
[ -x /usr/bin/chromium ] || { say "needs /usr/bin/chromium"; exit 1; }
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] || {
    say "needs tests/browser/node_modules (cd tests/browser && npm ci)"; exit 1; }

SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -INT "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$SERMENT" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" 2>"$WORK/serve.log" >/dev/null &
SERVER_PID=$!
for _ in $(seq 100); do
    URL=$(sed -n 's/^serment: listening on //p' "$WORK/serve.log")
    [ -n "$URL" ] && break
    sleep 0.1
done
[ -n "$URL" ] || { say "the server did not start"; cat "$WORK/serve.log" >&2; exit 1; }

s() { local home=$1; shift; SERMENT_HOME="$WORK/$home" "$SERMENT" --json "$@"; }
s lab id new --name labo-bench --kdf floor >/dev/null
s patient id new --name patient-bench --kdf floor >/dev/null
s lab register --server "$URL" >/dev/null
s patient register --server "$URL" >/dev/null
s lab contact add patient-bench >/dev/null 2>&1
s patient contact add labo-bench >/dev/null 2>&1
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/doc.bin"
DOC=$(s lab put "$WORK/doc.bin" --to patient-bench --title "bench ${SIZE_MIB} MiB" --mime application/octet-stream |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["doc_id"])')
s patient get "$DOC" -o "$WORK/warm.bin" >/dev/null   # pins the author, warms the page cache
cmp -s "$WORK/doc.bin" "$WORK/warm.bin"

# Native: the whole `serment get` command (keystore unlock at the floor cost, login, log sync,
# fetch, every check, decrypt, fsync'd write), RUNS times.
native=()
for i in $(seq "$RUNS"); do
    rm -f "$WORK/out.bin"
    t0=$(date +%s%N)
    s patient get "$DOC" -o "$WORK/out.bin" >/dev/null
    t1=$(date +%s%N)
    native+=($(( (t1 - t0) / 1000 )))
done
native_us=$(printf '%s\n' "${native[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")

# The browser: bench/web.mjs prints one JSON object.
browser=$(cd "$ROOT/tests/browser" && SERMENT_URL="$URL" SERMENT_KEYSTORE="$WORK/patient/keystore.srmk" \
    SERMENT_DOC="$DOC" SERMENT_SIZE=$((SIZE_MIB * 1024 * 1024)) RUNS="$RUNS" node "$ROOT/bench/web.mjs")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

wasm="$ROOT/crates/serment-server/web/pkg/serment_wasm_bg.wasm"
wasm_bytes=$(stat -c %s "$wasm")
wasm_gz=$(gzip -9 -c "$wasm" | wc -c)
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
ncpu=$(nproc)

python3 - "$native_us" "$browser" "$wasm_bytes" "$wasm_gz" "$cpu" "$ncpu" "$load_before" "$load_after" "$RUNS" "$SIZE_MIB" <<'PY'
import json, sys
native_us, browser, wasm, wasm_gz, cpu, ncpu, lb, la, runs, mib = sys.argv[1:]
b = json.loads(browser)
n = int(native_us) / 1e6
w_open = b["open_ms"] / 1e3
w_login_open = b["login_open_ms"] / 1e3
cold = b["cold_load_ms"] / 1e3
print(f"CPU: {cpu} ({ncpu} CPUs); load average before {lb}, after {la}; median of {runs} runs\n")
print("| what | wasm in Chromium | native | ratio | target | met? |")
print("|---|---|---|---|---|---|")
print(f"| open a {mib} MiB document: log in + fetch + checks + decrypt (page worker) vs `serment get` (whole command) | {w_login_open:.3f} s | {n:.3f} s | {w_login_open / n:.2f}× | ≤ 3× | {'yes' if w_login_open <= 3 * n else 'no'} |")
print(f"| … the open alone, session already logged in (fetch + checks + decrypt) | {w_open:.3f} s | {n:.3f} s | {w_open / n:.2f}× | ≤ 3× | {'yes' if w_open <= 3 * n else 'no'} |")
print(f"| cold page load on loopback, fresh browser, until the page is usable and the wasm fetched | {cold:.3f} s | — | — | < 1 s | {'yes' if cold < 1 else 'no'} |")
print(f"| … DOMContentLoaded / load event | {b['dcl_ms'] / 1e3:.3f} / {b['load_ms'] / 1e3:.3f} s | — | — | — | — |")
print(f"| wasm size (serment_wasm_bg.wasm), raw / gzip -9 | {int(wasm) / 1048576:.2f} MiB / {int(wasm_gz) / 1048576:.2f} MiB | — | — | — | — |")
PY
