#!/bin/bash
# Side by side on /work/benchdata: serment restore, serment verify-backup, restic restore (and restic restore + sync); ROUNDS rounds.
set -u
BIN=${BIN:-/work/main/target/release/serment}
OUT=${1:-/work/runs/side}
mkdir -p "$OUT"
W=/work/benchdata
VKEY=$(cat /work/runs/vkey)
export RESTIC_PASSWORD=serment-bench
lscpu | grep -E 'Model name|^CPU\(s\)' > "$OUT/cpu.txt"
t() { local name=$1; shift; sync; sleep ${PAUSE:-40}; local t0=$(date +%s.%N); /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"; local rc=$?; local t1=$(date +%s.%N); python3 -c "print(f'$name rc=$rc {$t1-$t0:.3f} s')" | tee -a "$OUT/times.txt"; }
for r in ${ROUNDS:-1 2}; do
  echo "load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/times.txt"
  rm -rf $W/restored $W/restic-restored; sync
  t "serment-restore-$r" "$BIN" --json restore --from "file://$W/backup" --data-dir "$W/restored" --log-key-file "$W/data/log.key"
  rm -rf $W/restored; sync
  t "serment-verify-$r" "$BIN" --json verify-backup --from "file://$W/backup" --log-key "$VKEY"
  t "restic-restore-$r" restic --repo "$W/restic" restore latest --target "$W/restic-restored"
  rm -rf $W/restic-restored; sync
  t "restic-restore-sync-$r" bash -c "restic --repo $W/restic restore latest --target $W/restic-restored && sync"
  rm -rf $W/restic-restored; sync
done
