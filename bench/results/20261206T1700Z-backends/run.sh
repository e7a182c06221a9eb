#!/usr/bin/env bash
# Issue 11 §7: ingest on PostgreSQL + S3-compatible object storage against SQLite + a local
# directory, the same release build, alternated in one run, the other engineers' builds paused
# (SIGSTOP) so the machine is quiet. E2EE path only (what `serment put` does), 8 clients, 5 s.
# Two document sizes: 4 KiB (sealed documents this small travel inline in the commit and live in
# the database, so the object store is not touched) and 512 KiB (stored as blobs: the object store
# is on the path).
# CPU per document is reported for the server process, and apart for PostgreSQL (the postmaster's
# own and reaped children's CPU, read from /proc after each run) and for moto (the S3 server).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
B=${B:-/work/main/target/release}
OUT=${OUT:-/work/bench-out/backends}; mkdir -p "$OUT"
PGPORT=55433 PGDIR=/work/bench-pg MOTO_PORT=9100
pg_bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n1)")
as_pg() { runuser -u postgres -- "$@"; }
mkdir -p $PGDIR && chown postgres: $PGDIR
[ -f $PGDIR/data/PG_VERSION ] || as_pg $pg_bin/initdb -D $PGDIR/data -A trust -U postgres >/dev/null
as_pg $pg_bin/pg_ctl -D $PGDIR/data status >/dev/null 2>&1 ||
  as_pg $pg_bin/pg_ctl -D $PGDIR/data -l $PGDIR/log -w -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c max_connections=300" start >/dev/null
psql_pg() { as_pg $pg_bin/psql -h 127.0.0.1 -p $PGPORT -U postgres -tAq "$@"; }
[ "$(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname='serment'")" = 1 ] || psql_pg -c "CREATE ROLE serment LOGIN PASSWORD 'serment'"
postmaster=$(head -1 $PGDIR/data/postmaster.pid)
MOTO_PORT=$MOTO_PORT source /work/main/.ci/s3.sh >/dev/null
moto=$(pgrep -f "moto_server -H 127.0.0.1 -p $MOTO_PORT" | head -1)
# utime + stime + cutime + cstime of a process, in seconds.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15+$16+$17)/hz}' /proc/$1/stat; }

pids=$(ps -eo pid=,comm=,args= | awk '$2 ~ /^(cargo|rustc|cc1|cc1plus|ld|collect2|clippy-driver|cc|c\+\+|ld.lld|rust-lld|node|chromium|chrome|wasm-bindgen|serment|serment-.*)$/ || $0 ~ /\/work\/wt-(scale|teams|web|devices)\// {print $1}' | grep -v "^$$\$")
echo "pausing: $(echo $pids | wc -w) processes"; kill -STOP $pids 2>/dev/null
trap 'kill -CONT $pids 2>/dev/null; echo resumed' EXIT
sleep 3; uptime; lscpu | grep 'Model name'
n=0
for round in ${ROUNDS:-1 2 3}; do
  for kib in 4 512; do
    for backend in sqlite pg-s3; do
      n=$((n+1)); args=()
      if [ $backend = pg-s3 ]; then
        db=bench_$n; psql_pg -c "CREATE DATABASE $db OWNER serment"
        curl -fsS -X PUT "http://127.0.0.1:$MOTO_PORT/bench-$n" >/dev/null
        args=(--serve-arg --database-url --serve-arg "postgres://serment:serment@127.0.0.1:$PGPORT/$db"
              --serve-arg --blob-url --serve-arg "s3://bench-$n/blobs")
      fi
      pg0=$(cpu $postmaster); m0=$(cpu $moto)
      $B/serment-loadgen ingest --serment $B/serment --clients 8 --seconds 5 --doc-kib $kib --e2ee-only "${args[@]}" \
        > $OUT/$backend-$kib-$round.json 2> $OUT/$backend-$kib-$round.err
      sleep 1
      pg1=$(cpu $postmaster); m1=$(cpu $moto)
      echo "{\"backend\":\"$backend\",\"kib\":$kib,\"round\":$round,\"pg_cpu_s\":$(awk "BEGIN{print $pg1 - $pg0}"),\"moto_cpu_s\":$(awk "BEGIN{print $m1 - $m0}"),\"run\":$(cat $OUT/$backend-$kib-$round.json)}" >> $OUT/all.jsonl
      echo "$backend $kib KiB round $round: $(tail -1 $OUT/$backend-$kib-$round.err | head -c 300)"
    done
  done
done
uptime
