#!/usr/bin/env bash
# Supply-chain check: RustSec advisories, licences, duplicate crypto crates and crate sources, as
# configured in deny.toml. Works offline apart from crates.io (which `cargo fetch` may need on a new
# machine): the advisory database is the RustSec snapshot in ../shared/data/advisory-db.
#
# Usage: tools/deny.sh [cargo-deny check arguments...]
#   tools/deny.sh                 # every check (what CI runs)
#   tools/deny.sh advisories      # one check: advisories | bans | licenses | sources
# Exit status: non-zero when any check fails (a vulnerability, a disallowed licence, ...).
# See docs/SUPPLY_CHAIN.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# Oldest cargo-deny that understands deny.toml (advisories.unsound, unused-ignored-advisory and
# licenses.include-build came in 0.19.0); the version we install when it is missing or older.
min_version=0.19.0
install_version=${CARGO_DENY_VERSION:-0.20.2}

die() { echo "tools/deny.sh: error: $*" >&2; exit 1; }

shared=$root/../shared
if [ ! -x "$shared/tools/advisory-db.sh" ] || [ ! -d "$shared/data/advisory-db/crates" ]; then
  die "no RustSec snapshot at $shared (expected ../shared/tools/advisory-db.sh and ../shared/data/advisory-db beside the project root); without it the advisory check cannot run"
fi

installed=$(cargo deny --version 2>/dev/null | awk '{print $2}') || installed=
if [ -z "$installed" ] ||
  [ "$(printf '%s\n%s\n' "$min_version" "$installed" | sort -V | head -n1)" != "$min_version" ]; then
  echo "tools/deny.sh: installing cargo-deny $install_version (found: ${installed:-none}; needs >= $min_version)"
  cargo install cargo-deny --locked --version "$install_version"
fi

# Lay the snapshot out where deny.toml's db-path points (cargo-deny reads it as a git repository).
db=target/advisory-db
"$shared/tools/advisory-db.sh" "$db" >/dev/null
snaps=("$db"/advisory-db-*/)
snap=${snaps[0]}
snap_date=$(git -C "$snap" show -s --format=%cs HEAD)
snap_age=$(( ($(date +%s) - $(git -C "$snap" show -s --format=%ct HEAD)) / 86400 ))
echo "tools/deny.sh: $(cargo deny --version); RustSec snapshot of $snap_date ($snap_age days old, $(find "$snap/crates" -name 'RUSTSEC-*.md' | wc -l) advisories)"
# cargo-deny's own staleness check cannot see the snapshot's age (the layout is fresh each run).
if [ "$snap_age" -gt 90 ]; then
  echo "tools/deny.sh: warning: the advisory snapshot is over 90 days old; advisories published since $snap_date are not checked. Ask for ../shared/data/advisory-db to be refreshed." >&2
fi

# cargo-deny reads the crates' manifests; make sure they are on disk (a no-op when already cached).
cargo fetch --locked --quiet

cargo deny --offline --locked check --hide-inclusion-graph "$@"
