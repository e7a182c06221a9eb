#!/usr/bin/env bash
# Software bill of materials for the `serment` binary (crate serment-cli), in CycloneDX 1.5 JSON, from
# cargo-cyclonedx (the CycloneDX project's own Cargo plugin). Needs no network once the crates are
# fetched.
#
# Usage: tools/sbom.sh [TARGET-TRIPLE]      (default: this machine's target, as `rustc -vV` prints it)
# Output: target/sbom/serment.cdx.json      See docs/SUPPLY_CHAIN.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cyclonedx_version=${CARGO_CYCLONEDX_VERSION:-0.5.9}
target=${1:-$(rustc -vV | sed -n 's/^host: //p')}
out=target/sbom/serment.cdx.json

if ! cargo cyclonedx --version >/dev/null 2>&1; then
  echo "tools/sbom.sh: installing cargo-cyclonedx $cyclonedx_version"
  cargo install cargo-cyclonedx --locked --version "$cyclonedx_version"
fi
command -v python3 >/dev/null || { echo "tools/sbom.sh: error: python3 is needed to trim the SBOM" >&2; exit 1; }

cargo fetch --locked --quiet
mkdir -p target/sbom

# cargo-cyclonedx writes `<binary>_bin.cdx.json` beside each workspace member's Cargo.toml; take ours to
# target/sbom and leave nothing behind in the source tree, even on failure.
raw=crates/serment-cli/serment_bin.cdx.json
cleanup() { find crates -maxdepth 2 -name '*_bin.cdx.json' -delete; }
trap cleanup EXIT
# The commit time as the SBOM's timestamp: the same commit gives the same file.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s) \
  cargo cyclonedx --manifest-path crates/serment-cli/Cargo.toml --describe binaries \
  --format json --spec-version 1.5 --target "$target" --quiet
[ -s "$raw" ] || { echo "tools/sbom.sh: error: cargo-cyclonedx wrote no $raw" >&2; exit 1; }

# cargo-cyclonedx reads `cargo metadata`, whose resolve also lists optional dependencies that are only
# named by weak features (`dep?/feature`): sqlx-mysql and sqlx-postgres with rsa, md-5, ... which are not
# compiled into serment. Keep only the packages cargo really builds for this binary and target
# (`cargo tree`, normal and build dependencies), so a scanner reading the SBOM sees what we ship.
cargo tree --locked --offline -p serment-cli -e normal,build --target "$target" \
  --prefix none --format '{p}' >target/sbom/tree.txt
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || commit="$commit-dirty"
python3 - "$raw" target/sbom/tree.txt "$out" "$root" "$commit" <<'PY'
import json, sys

raw, tree, out, root, commit = sys.argv[1:]
built = set()
for line in open(tree, encoding="utf-8"):
    parts = line.split()
    if len(parts) >= 2 and parts[1].startswith("v"):
        built.add((parts[0], parts[1][1:]))

# bom-refs of workspace crates carry the checkout's absolute path: make them relative so the SBOM is
# the same wherever it is produced.
text = open(raw, encoding="utf-8").read().replace("path+file://" + root + "/", "path+file:")
bom = json.loads(text)

kept, dropped = [], []
for c in bom.get("components", []):
    (kept if (c["name"], c["version"]) in built else dropped).append(c)
refs = {c["bom-ref"] for c in kept} | {bom["metadata"]["component"]["bom-ref"]}
bom["components"] = kept
bom["dependencies"] = [
    {**d, "dependsOn": [r for r in d.get("dependsOn", []) if r in refs]}
    for d in bom.get("dependencies", []) if d["ref"] in refs
]
# serment-cli itself is metadata.component, not a component.
missing = {p for p in built if p[0] != "serment-cli"} - {(c["name"], c["version"]) for c in kept}
if missing:
    sys.exit("tools/sbom.sh: error: built but missing from the SBOM: "
             + ", ".join(sorted(f"{n}@{v}" for n, v in missing)))
bom["metadata"].setdefault("properties", []).append({"name": "serment:git-commit", "value": commit})

with open(out, "w", encoding="utf-8") as f:
    json.dump(bom, f, indent=2)
    f.write("\n")
print(f"tools/sbom.sh: {out}: {bom['metadata']['component']['name']} "
      f"{bom['metadata']['component']['version']}, {len(kept)} components"
      + (f" (left out, not built: {', '.join(sorted(c['name'] + '@' + c['version'] for c in dropped))})"
         if dropped else ""))
PY
rm -f target/sbom/tree.txt
