#!/usr/bin/env bash
# bench/backup.sh -- issue 12 §6: Serment's backup beside restic on the same data directory.
#
#   bash bench/backup.sh [OUT_DIR]        # default: bench/results/<date>-<commit>-backup
#
# Needs Debian's restic (`apt-get install -y restic`, installed here if missing and run as root)
# and python3. Builds `serment` and `serment-loadgen` in release mode. One run:
#   1. a server (SQLite + blob directory) is filled with about 1.8 GiB of mixed sizes through the
#      real client: 4 KiB FHIR Observations and ~300 KiB ones from the load generator, and
#      BIG_FILES files of BIG_MIB MiB with `serment put`; the server is stopped;
#   2. initial backup: `serment backup --once --to file://...` vs `restic backup` of the data
#      directory into a local repository (S3=1 adds `serment backup` to the S3 test server of
#      .ci/s3.sh: off by default, moto holds objects in memory on a shared machine);
#   3. incremental: about 1,000 new 4 KiB documents, then both again;
#   4. restore: `serment restore` (which verifies everything first) and `serment verify-backup`
#      vs `restic restore`, each under /usr/bin/time -v (peak RSS);
#   5. RPO: `serve --backup-url file://...` at the default interval (10 s) continuing the same
#      backup, under the ingest load generator for RPO_SECS s; a poller (every 0.25 s) records
#      the server's checkpoint size and the newest manifest's size; each entry's RPO is the time
#      from the first poll that saw it acknowledged (in the server's checkpoint) to the first
#      poll that saw a manifest covering it (resolution: the poll interval).
# Writes the CPU model, the load average before and after each step, every tool's output and
# summary.md into OUT_DIR; deletes the data directories at the end (KEEP=1 keeps them).
# Quick check of the script: BIG_FILES=2 BIG_MIB=4 SMALL_SECS=3 MID_SECS=2 RPO_SECS=15 bash bench/backup.sh /tmp/x
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+dirty')
OUT=${1:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%MZ)-$COMMIT-backup}
WORK=${WORK:-$(mktemp -d /tmp/serment-backup-bench.XXXXXX)}
CLIENTS=${CLIENTS:-4}
SMALL_SECS=${SMALL_SECS:-30}
MID_SECS=${MID_SECS:-20}
BIG_FILES=${BIG_FILES:-36}
BIG_MIB=${BIG_MIB:-40}
RPO_SECS=${RPO_SECS:-60}
INCR_DOCS=${INCR_DOCS:-1000}
mkdir -p "$OUT"
export RESTIC_PASSWORD=serment-bench SERMENT_PASSPHRASE=serment-bench-passphrase
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERMENT=$TARGET_DIR/release/serment
LOADGEN=$TARGET_DIR/release/serment-loadgen

load() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) -- $1" | tee -a "$OUT/load.txt" >&2; }
# Seconds (3 decimals) a command takes; its output to $OUT/<name>.out, /usr/bin/time -v to .time.
timed() {
    local name=$1
    shift
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$OUT/$name.time" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
    t1=$(date +%s.%N)
    python3 -c "print(f'{$t1 - $t0:.3f}')" | tee "$OUT/$name.secs"
}
rss_mib() { awk -F': ' '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$OUT/$1.time"; }
du_mib() { du -sm "$1" | cut -f1; }

command -v restic >/dev/null || apt-get install -y -qq restic >/dev/null
restic version | tee "$OUT/restic-version.txt" >&2
lscpu | grep -E 'Model name|^CPU\(s\)' | tee "$OUT/cpu.txt" >&2
echo "commit $COMMIT" | tee "$OUT/commit.txt" >&2
(cd "$ROOT" && nice -n 10 cargo build --release -p serment-cli -p serment-loadgen 2>&1 | tail -1 >&2)

DATA=$WORK/data
SERVER_PID=
start_server() { # extra serve args...
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$SERMENT" serve --listen "127.0.0.1:$port" --data-dir "$DATA" "$@" 2>"$WORK/serve.log" &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        grep -q 'listening on' "$WORK/serve.log" 2>/dev/null && break
        sleep 0.1
    done
    URL=$(sed -n 's/^serment: listening on //p' "$WORK/serve.log" | head -n1)
    [ -n "$URL" ] || { cat "$WORK/serve.log" >&2; exit 1; }
}
stop_server() { kill -INT "$SERVER_PID"; wait "$SERVER_PID" || true; }
cli() { SERMENT_HOME=$WORK/$1 "$SERMENT" --json "${@:2}"; }
ingest() { # seconds doc-kib name
    "$LOADGEN" ingest --server "$URL" --e2ee-only --clients "$CLIENTS" --seconds "$1" \
        --doc-kib "$2" >"$OUT/$3.json" 2>"$OUT/$3.txt"
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ingest']['e2ee']['documents'])" "$OUT/$3.json"
}

# 1. The data.
load "fill"
start_server --init
SMALL=$(ingest "$SMALL_SECS" 4 fill-small)
MID=$(ingest "$MID_SECS" 300 fill-mid)
tag=$(date +%s)
cli lab id new --name "bench-lab-$tag" --kdf floor >/dev/null
cli pat id new --name "bench-pat-$tag" --kdf floor >/dev/null
cli lab register --server "$URL" >/dev/null
cli pat register --server "$URL" >/dev/null
cli lab contact add "bench-pat-$tag" >/dev/null
head -c "$((BIG_MIB << 20))" /dev/urandom >"$WORK/big.bin"
for _ in $(seq 1 "$BIG_FILES"); do
    cli lab put "$WORK/big.bin" --to "bench-pat-$tag" >/dev/null
done
rm -f "$WORK/big.bin"
stop_server
echo "$SMALL x 4 KiB, $MID x 300 KiB, $BIG_FILES x $BIG_MIB MiB documents; $(du_mib "$DATA") MiB on disk" | tee "$OUT/data.txt" >&2

# 2. Initial backup.
load "initial: serment backup"
B=$WORK/backup
INIT_S=$(timed serment-initial "$SERMENT" --json backup --once --to "file://$B" --data-dir "$DATA")
VKEY=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['log_key'])" "$OUT/serment-initial.out")
S3_INIT_S=n/a
if [ "${S3:-0}" = 1 ]; then
    load "initial: serment backup to S3"
    # shellcheck disable=SC1091
    source "$ROOT/.ci/s3.sh" >/dev/null
    bucket=serment-bench-$tag
    curl -fsS -X PUT "$AWS_ENDPOINT_URL/$bucket" >/dev/null
    S3_INIT_S=$(timed serment-initial-s3 "$SERMENT" --json backup --once --to "s3://$bucket/b" --data-dir "$DATA")
fi
load "initial: restic backup"
R=$WORK/restic
restic init --repo "$R" >/dev/null
RESTIC_INIT_S=$(timed restic-initial restic --repo "$R" backup "$DATA")

# 3. Incremental after about INCR_DOCS new documents.
load "incremental: new documents"
start_server
rate=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ingest']['e2ee']['docs_per_s'])" "$OUT/fill-small.json")
secs=$(python3 -c "import math,sys; print(max(1, math.ceil(float(sys.argv[1]) / float(sys.argv[2]))))" "$INCR_DOCS" "$rate")
NEW=$(ingest "$secs" 4 incr-docs)
stop_server
load "incremental: serment backup"
INCR_S=$(timed serment-incremental "$SERMENT" --json backup --once --to "file://$B" --data-dir "$DATA")
load "incremental: restic backup"
RESTIC_INCR_S=$(timed restic-incremental restic --repo "$R" backup "$DATA")

# 4. Restore.
load "serment restore"
RESTORE_S=$(timed serment-restore "$SERMENT" --json restore --from "file://$B" --data-dir "$WORK/restored" --log-key-file "$DATA/log.key")
rm -rf "$WORK/restored"
load "serment verify-backup"
VERIFY_S=$(timed serment-verify "$SERMENT" --json verify-backup --from "file://$B" --log-key "$VKEY")
load "restic restore"
RESTIC_RESTORE_S=$(timed restic-restore restic --repo "$R" restore latest --target "$WORK/restic-restored")
rm -rf "$WORK/restic-restored"

# 5. RPO under load, at the default interval.
load "RPO"
start_server --backup-url "file://$B"
cat >"$WORK/poll.py" <<'PY'
import json, os, sys, time, urllib.request
url, bdir, stop = sys.argv[1], sys.argv[2], sys.argv[3]
def backed():
    names = sorted(os.listdir(os.path.join(bdir, "manifests")))
    with open(os.path.join(bdir, "manifests", names[-1])) as f:
        for line in f:
            if line.startswith("size "):
                return int(line.split()[1])
    return 0
rows = []
while not os.path.exists(stop):
    t = time.time()
    with urllib.request.urlopen(url + "/v1/log/checkpoint") as r:
        size = int(json.load(r)["checkpoint"].splitlines()[1])
    rows.append((t, size, backed()))
    time.sleep(max(0.0, 0.25 - (time.time() - t)))
json.dump(rows, sys.stdout)
PY
python3 "$WORK/poll.py" "$URL" "$B" "$WORK/stop" >"$OUT/rpo-polls.json" &
POLL=$!
RPO_DOCS=$(ingest "$RPO_SECS" 4 rpo-ingest)
sleep 25 # the last increments land
touch "$WORK/stop"
wait "$POLL"
stop_server
python3 - "$OUT/rpo-polls.json" >"$OUT/rpo.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
lags, seen = [], rows[0][1]
for i, (t, size, _) in enumerate(rows):
    if size <= seen:
        continue
    landed = next((t2 for (t2, _, b) in rows[i:] if b >= size), None)
    if landed is None:
        print(json.dumps({"error": f"entries up to {size} never landed in the backup"}))
        sys.exit(0)
    lags += [landed - t] * (size - seen)
    seen = size
lags.sort()
pct = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))]
print(json.dumps({"entries": len(lags), "p50_s": round(pct(0.50), 2), "p99_s": round(pct(0.99), 2), "max_s": round(lags[-1], 2)}))
PY
RPO=$(cat "$OUT/rpo.json")
load "done"

ratio=$(python3 -c "import sys; print(f'{(float(sys.argv[1]) + float(sys.argv[2])) / float(sys.argv[3]):.2f}')" "$RESTORE_S" "$VERIFY_S" "$RESTIC_RESTORE_S")
ratio1=$(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$RESTORE_S" "$RESTIC_RESTORE_S")
{
    echo "# Backup benchmark (issue 12 §6), commit $COMMIT"
    echo
    sed 's/^/    /' "$OUT/cpu.txt"
    echo
    echo "Data: $(cat "$OUT/data.txt"). Load average per step: load.txt."
    echo
    echo "| step | Serment | restic $(restic version | cut -d' ' -f2) | ratio |"
    echo "|---|---|---|---|"
    echo "| initial backup (local directory) | ${INIT_S} s | ${RESTIC_INIT_S} s | $(python3 -c "print(f'{$INIT_S / $RESTIC_INIT_S:.2f}')")x |"
    echo "| initial backup to S3 (moto) | ${S3_INIT_S} s | -- | |"
    echo "| incremental after $NEW new documents | ${INCR_S} s | ${RESTIC_INCR_S} s | $(python3 -c "print(f'{$INCR_S / $RESTIC_INCR_S:.2f}')")x |"
    echo "| restore (verifies first) | ${RESTORE_S} s, peak RSS $(rss_mib serment-restore) MiB | ${RESTIC_RESTORE_S} s, peak RSS $(rss_mib restic-restore) MiB | ${ratio1}x |"
    echo "| restore + verify-backup | $(python3 -c "print(f'{$RESTORE_S + $VERIFY_S:.3f}')") s (verify-backup ${VERIFY_S} s, peak RSS $(rss_mib serment-verify) MiB) | ${RESTIC_RESTORE_S} s | ${ratio}x |"
    echo "| RPO under ingest ($RPO_DOCS documents in ${RPO_SECS} s, interval 10 s) | $RPO | | |"
} | tee "$OUT/summary.md" >&2
[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
echo "results in $OUT" >&2
