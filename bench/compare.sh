#!/usr/bin/env bash
# bench/compare.sh — `serment seal` / `serment open` against `age`, `rage` and `cp`, side by side,
# on random files of 256 MiB and 2 GiB (issue 4; docs/PERFORMANCE.md).
#
# Public tools only. It installs what it lacks: age, GNU time and eatmydata (Debian packages, apt-get) and
# rage (crates.io, `cargo install rage --locked`). It builds `serment` in release unless
# SERMENT=/path/to/serment is given. Run it with the machine otherwise quiet: it prints the load
# average before and after, and absolute times on a shared machine are noise — compare the ratios.
#
#   bash bench/compare.sh                 # 256 MiB (5 runs per row) and 2 GiB (3 runs per row)
#   SIZES=256 RUNS=3 bash bench/compare.sh
#
# Each figure is the median wall time of RUNS (RUNS_BIG from 1 GiB) runs and the largest peak RSS (GNU time %M) seen.
# Inputs stay in the page cache (every tool reads the same warm file); outputs are new files, and
# `sync` runs before each timed run so one tool's writeback does not land in the next one's time.
# `serment` writes through a temporary file that it fsyncs and renames (a crash never leaves a
# partial plaintext), so `cp + fsync` (`dd conv=fsync`) is listed as well as plain `cp`.
# `serment` unlocks an Argon2id keystore on every run; rows are given for a keystore at the
# default cost (64 MiB, t=3) and at the format's floor (19 MiB, t=2, `id new --kdf floor`), and
# through `serment agent` (unlocked once before the runs; the "(agent)" rows, issue 14 §4).
# SKIP_RAGE=1 skips installing rage when it is missing (its rows are then left out).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZES=${SIZES:-"256 2048"}
RUNS=${RUNS:-5}
RUNS_BIG=${RUNS_BIG:-3}   # runs per row for files of 1 GiB and more
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/var/tmp}/serment-compare.XXXXXX")}
KEEP=${KEEP:-0}
export SERMENT_PASSPHRASE=compare-passphrase

say() { printf '%s\n' "$*" >&2; }

need_apt() {
    if ! command -v "$1" >/dev/null 2>&1; then
        say "installing $2 (apt-get)"
        apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
    fi
}
need_apt age age
need_apt age-keygen age
need_apt bc bc
need_apt eatmydata eatmydata
[ -x /usr/bin/time ] || need_apt /usr/bin/time time
if [ "${SKIP_RAGE:-0}" != 1 ] && ! command -v rage >/dev/null 2>&1; then
    say "installing rage (cargo install rage --locked)"
    cargo install rage --locked >/dev/null 2>&1 || say "rage could not be installed; its rows are skipped"
fi
export PATH="$HOME/.cargo/bin:$PATH"
if [ -z "${SERMENT:-}" ]; then
    say "building serment (release)"
    (cd "$ROOT" && cargo build --release -p serment-cli >/dev/null 2>&1)
    SERMENT="$ROOT/target/release/serment"
fi

# The agents of the "(agent)" rows, one per keystore, each on its own socket under $WORK.
agent_sock() { printf '%s/agent-%s/agent.sock' "$WORK" "$1"; }
cleanup() {
    for k in sender-default recip-default; do
        [ -S "$(agent_sock "$k")" ] &&
            SERMENT_AGENT_SOCK=$(agent_sock "$k") "$SERMENT" agent stop >/dev/null 2>&1
    done
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
say "work directory: $WORK ($(df -h . | awk 'NR==2{print $1, $6}'))"
say "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
say "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# Keys: a sender and a recipient for each tool.
"$SERMENT" --home sender-default id new --name sender >/dev/null
"$SERMENT" --home sender-floor id new --name sender --kdf floor >/dev/null
"$SERMENT" --home recip-default id new --name recipient >/dev/null
"$SERMENT" --home recip-floor id new --name recipient --kdf floor >/dev/null
for k in sender-default sender-floor recip-default recip-floor; do
    "$SERMENT" --home "$k" id export-record -o "$k.rec" >/dev/null
done
# `serment agent` (issue 14 §4): each default-cost keystore unlocked once, before any timed run.
for k in sender-default recip-default; do
    mkdir -p -m 700 "$WORK/agent-$k"
    SERMENT_AGENT_SOCK=$(agent_sock "$k") "$SERMENT" --home "$k" agent start --ttl 1h >/dev/null
done
age-keygen -o age.key 2>/dev/null
AGE_R=$(age-keygen -y age.key)

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# measure NAME OUTPUT CMD...: RUNS runs; records the median wall time and the largest peak RSS.
measure() {
    local name=$1 out=$2
    shift 2
    local walls=() rss=0 i t0 t1 m runs=$RUNS
    ((SIZE >= 1024)) && runs=$RUNS_BIG
    for ((i = 0; i < runs; i++)); do
        rm -f "$out"
        sync
        t0=$EPOCHREALTIME
        /usr/bin/time -f '%M' -o time.out "$@" >/dev/null 2>cmd.err || { cat cmd.err >&2; return 1; }
        t1=$EPOCHREALTIME
        walls+=("$(echo "$t1 - $t0" | bc -l)")
        m=$(tail -1 time.out)
        ((m > rss)) && rss=$m
    done
    local med
    med=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
    printf '%s\t%s\t%s\t%s\n' "$SIZE" "$name" "$med" "$rss" >>"$RESULTS"
    say "$(printf '  %-28s %8.3f s  %7.1f MiB' "$name" "$med" "$(echo "$rss / 1024" | bc -l)")"
}

for SIZE in $SIZES; do
    say ""
    say "== $SIZE MiB =="
    head -c "$((SIZE * 1024 * 1024))" /dev/urandom >in.bin
    cat in.bin >/dev/null
    measure "cp" out.bin cp in.bin out.bin
    measure "cp + fsync" out.bin dd if=in.bin of=out.bin bs=1M conv=fsync status=none
    measure "age encrypt" in.age age -r "$AGE_R" -o in.age in.bin
    measure "age decrypt" out.bin age -d -i age.key -o out.bin in.age
    cmp -s in.bin out.bin || { say "age round trip differs"; exit 1; }
    if command -v rage >/dev/null 2>&1; then
        measure "rage encrypt" in.rage rage -r "$AGE_R" -o in.rage in.bin
        measure "rage decrypt" out.bin rage -d -i age.key -o out.bin in.rage
        cmp -s in.bin out.bin || { say "rage round trip differs"; exit 1; }
    fi
    for kdf in default floor; do
        measure "serment seal ($kdf kdf)" in.srmc \
            "$SERMENT" --home "sender-$kdf" seal in.bin -o in.srmc --to-record "recip-$kdf.rec"
        measure "serment open ($kdf kdf)" out.bin \
            "$SERMENT" --home "recip-$kdf" open in.srmc -o out.bin --author-record "sender-$kdf.rec"
        cmp -s in.bin out.bin || { say "serment round trip differs"; exit 1; }
    done
    # What the durable write costs (issue 14 §4: the agent target against age, which does not
    # fsync): the floor-KDF rows again with fsync made a no-op by eatmydata (LD_PRELOAD, Debian's
    # package). A measurement only: serment itself always fsyncs (PROTOCOL.md §6.3).
    if command -v eatmydata >/dev/null 2>&1; then
        measure "serment seal (floor kdf, no fsync)" in.srmc eatmydata \
            "$SERMENT" --home sender-floor seal in.bin -o in.srmc --to-record recip-floor.rec
        measure "serment open (floor kdf, no fsync)" out.bin eatmydata \
            "$SERMENT" --home recip-floor open in.srmc -o out.bin --author-record sender-floor.rec
        cmp -s in.bin out.bin || { say "serment (no fsync) round trip differs"; exit 1; }
    fi
    # Through the agent: no passphrase, no Argon2id; the command runs in the agent's process, so
    # the RSS column is the client's only (the agent's own memory is not in it).
    measure "serment seal (agent)" in.srmc env -u SERMENT_PASSPHRASE \
        SERMENT_AGENT_SOCK="$(agent_sock sender-default)" \
        "$SERMENT" --home sender-default seal in.bin -o in.srmc --to-record recip-default.rec
    measure "serment open (agent)" out.bin env -u SERMENT_PASSPHRASE \
        SERMENT_AGENT_SOCK="$(agent_sock recip-default)" \
        "$SERMENT" --home recip-default open in.srmc -o out.bin --author-record sender-default.rec
    cmp -s in.bin out.bin || { say "serment (agent) round trip differs"; exit 1; }
    # The keystore unlock alone (what every serment command pays before any byte is sealed).
    for kdf in default floor; do
        measure "serment unlock ($kdf kdf)" none.out "$SERMENT" --home "sender-$kdf" id show
    done
    rm -f in.bin in.age in.rage in.srmc out.bin
done
say ""
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Ratios: "vs age" is age's time over ours (> 1: we are faster); "vs cp" and "vs cp+fsync" are
# ours over cp's (serment fsyncs before it renames, PROTOCOL.md §6.3: cp + fsync is the fair floor).
say ""
printf '%-6s %-36s %9s %9s %8s %8s %11s\n' "MiB" "what" "wall s" "RSS MiB" "vs age" "vs cp" "vs cp+fsync"
awk -F'\t' '
    { size[NR]=$1; name[NR]=$2; wall[NR]=$3; rss[NR]=$4; key=$1 "|" $2; w[key]=$3 }
    END {
        for (i = 1; i <= NR; i++) {
            n = name[i]; s = size[i]; va = "-"; vc = "-"; vf = "-"
            if (n ~ /encrypt|seal/) ref = w[s "|age encrypt"]; else if (n ~ /decrypt|open/) ref = w[s "|age decrypt"]; else ref = ""
            if (ref != "" && n !~ /^age/) va = sprintf("%.2fx", ref / wall[i])
            if (n !~ /^cp/ && n !~ /unlock/) vc = sprintf("%.2fx", wall[i] / w[s "|cp"])
            if (n !~ /^cp/ && n !~ /unlock/) vf = sprintf("%.2fx", wall[i] / w[s "|cp + fsync"])
            printf "%-6s %-36s %9.3f %9.1f %8s %8s %11s\n", s, n, wall[i], rss[i] / 1024, va, vc, vf
        }
    }' "$RESULTS"
