#!/usr/bin/env python3
"""bench/summary.py OUT_DIR -- the rows issue 14's Done-when asks of docs/PERFORMANCE.md, from one
bench/run-all.sh run (its crypto.txt, compare.txt and ingest.json), printed as a Markdown table.

- memory ceiling: the `memory` group's median throughputs (256 MiB copy, read+write pass; one
  core and all cores);
- all-core ratio: `document_ops::seal_256mib` (all cores) against the format's compute ceiling
  (cores x `chunk::seal_slot_suite2`, one core) and against the memory ceiling
  (`memory::read_write_256mib_all_cores`), and against the lower of the two (target >= 0.85);
- server CPU per 4 KiB document (E2EE, plaintext) and the E2EE/plaintext cost (loadgen ingest,
  request signing on: every client request is signed);
- `serment seal`/`open` against `age` at 256 MiB, without the agent (default and floor KDF) and
  with it.

A row whose input is missing says so instead of a figure. Throughputs are divan's medians.
"""
import json
import os
import re
import sys

UNITS = {"B/s": 1e-9, "KB/s": 1e-6, "MB/s": 1e-3, "GB/s": 1.0, "TB/s": 1e3}


def divan_median_gbps(text, name):
    """The median throughput (GB/s) of the divan row `name`, or None."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"[├╰]─ " + re.escape(name) + r"\s", line) and i + 1 < len(lines):
            cols = lines[i + 1].split("│")
            # Tree prefix columns come first; the four figures are the last 4 (or 6) columns.
            figures = [c.strip() for c in cols if re.search(r"[0-9.]+ [KMGT]?B/s", c)]
            if len(figures) >= 3:
                value, unit = figures[2].split()
                return float(value) * UNITS[unit]
    return None


def compare_rows(text, size="256"):
    """(name -> (wall s, vs age)) from compare.sh's final table at `size` MiB."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\d+)\s+(.+?)\s{2,}([0-9.]+)\s+([0-9.]+)\s+(\S+)", line)
        if m and m.group(1) == size:
            out[m.group(2).strip()] = (float(m.group(3)), m.group(5))
    return out


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/summary.py OUT_DIR")
    out = sys.argv[1]
    cores = os.cpu_count() or 1
    rows = []
    crypto = read(os.path.join(out, "crypto.txt"))
    if crypto is None:
        rows.append(("core benchmarks", "missing crypto.txt"))
    else:
        mem = {n: divan_median_gbps(crypto, n) for n in (
            "copy_256mib", "copy_256mib_all_cores", "read_write_256mib",
            "read_write_256mib_all_cores")}
        for n, v in mem.items():
            rows.append((f"memory ceiling: {n}", f"{v:.2f} GB/s" if v else "missing"))
        seal = divan_median_gbps(crypto, "seal_256mib")
        slot = divan_median_gbps(crypto, "seal_slot_suite2")
        memc = mem["read_write_256mib_all_cores"]
        if seal and slot:
            compute = cores * slot
            rows.append(("all-core seal 256 MiB", f"{seal:.2f} GB/s"))
            rows.append((f"compute ceiling ({cores} x seal_slot_suite2)", f"{compute:.2f} GB/s"))
            rows.append(("all-core seal / compute ceiling", f"{seal / compute:.2f}"))
            if memc:
                rows.append(("all-core seal / memory ceiling (read+write, all cores)",
                             f"{seal / memc:.2f}"))
                low = min(compute, memc)
                rows.append(("all-core seal / lower ceiling (target >= 0.85)",
                             f"{seal / low:.2f}"))
        else:
            rows.append(("all-core ratio", "missing seal_256mib or seal_slot_suite2"))
    ingest = read(os.path.join(out, "ingest.json"))
    if ingest is None:
        rows.append(("server CPU per document", "missing ingest.json"))
    else:
        ing = json.loads(ingest).get("ingest", {})
        for mode in ("e2ee", "plaintext"):
            cpu = ing.get(mode, {}).get("server_cpu_ms_per_doc")
            rows.append((f"server CPU per {ing.get('doc_kib', 4)} KiB document, {mode}"
                         " (target <= 0.35 ms E2EE)",
                         f"{cpu:.3f} ms" if cpu is not None else "missing"))
        r = ing.get("e2ee_over_plaintext_cost")
        rows.append(("E2EE / plaintext cost, request signing on (target <= 1.15x)",
                     f"{r:.2f}x" if r is not None else "missing"))
    compare = read(os.path.join(out, "compare.txt"))
    if compare is None:
        rows.append(("seal/open vs age", "missing compare.txt"))
    else:
        c = compare_rows(compare)
        for n in ("serment seal (default kdf)", "serment open (default kdf)",
                  "serment seal (floor kdf)", "serment open (floor kdf)",
                  "serment seal (agent)", "serment open (agent)"):
            v = c.get(n)
            rows.append((f"256 MiB {n}: age's time / ours (agent target >= 2x)",
                         f"{v[1]} ({v[0]:.3f} s)" if v else "missing"))
        # What the fsync costs (compare.sh's eatmydata rows, when eatmydata was there).
        for n in ("serment seal (floor kdf, no fsync)", "serment open (floor kdf, no fsync)"):
            v = c.get(n)
            if v:
                rows.append((f"256 MiB {n}: age's time / ours (measurement only)",
                             f"{v[1]} ({v[0]:.3f} s)"))
    print("| row | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
