#!/usr/bin/env python3
"""The family x backend x dtype table of a `skillset --run-tests` results file.

    scripts/gpu_table.py RESULTS [--backend cuda]          the table (gpu-check.sh prints it)
    scripts/gpu_table.py RESULTS --backend cuda --markdown GPU_RESULTS.md \
        --card "NVIDIA H100 80GB HBM3, driver 580.159.04"

After a GPU session (scripts/gpu-session.sh), scripts/gpu-record.sh copies its cuda runs
into backend_results.json (`skillset --merge-results`) and writes the table with the
card it ran on (--markdown).

Each f16/bf16 cell gives two counts: checks within 1e-2 of transformers' run in that
dtype, and (in brackets) checks no farther from transformers' f32 outputs than its own
half-precision run is (twice its error at most, or keeping the labels and tokens it
keeps). A run's outcome fails on a half-precision check only beyond the second.
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DTYPES = ("f32", "f16", "bf16")


def fmt(e):
    return "-" if e is None else f"{e:.2e}"


def tabulate(results: dict, backend: str | None):
    fams = {e["model_type"]: e["family"] for e in json.load(open(ROOT / "model_types.json"))["model_types"]}
    # per (family, backend) x dtype: [passed, run, within transformers' own error]
    table = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    outcomes = defaultdict(lambda: defaultdict(int))
    failures, missing, informational = [], defaultdict(int), []
    for mt, runs in results["results"].items():
        for r in runs:
            if backend and r["backend"] != backend:
                continue
            if r.get("checks"):
                outcomes[(fams.get(mt), r["backend"])][r["outcome"]] += 1
            for c in r.get("checks", []):
                if not c["passed"] and c.get("detail", "").startswith("no reference."):
                    # transformers could not recompute this fixture there (references.log
                    # says why): not a check that ran.
                    missing[(c["fixture"], c["dtype"])] += 1
                    continue
                cell = table[(fams.get(mt), r["backend"])][c["dtype"]]
                cell[0] += c["passed"]
                cell[1] += 1
                cell[2] += c.get("within_reference_error", c["passed"])
                if not c["passed"] and c.get("informational"):
                    informational.append(f"{r['backend']} {c['dtype']} {c['fixture']}")
                if not c["passed"]:
                    failures.append(
                        f"{r['backend']} {c['dtype']} {c['fixture']} {c['task']}: "
                        f"{c.get('detail', '')[:140]} [vs f32: ours {fmt(c.get('error_vs_f32'))}, "
                        f"transformers {fmt(c.get('reference_error_vs_f32'))}]")
    rows = []
    for (fam, be), cells in sorted(table.items(), key=lambda x: (str(x[0][0]), x[0][1])):
        row = [str(fam), be]
        for dt in DTYPES:
            if dt not in cells:
                row.append("-")
            elif dt == "f32":
                row.append(f"{cells[dt][0]}/{cells[dt][1]}")
            else:
                row.append(f"{cells[dt][0]}/{cells[dt][1]} ({cells[dt][2]})")
        o = outcomes[(fam, be)]
        row.append(f"{o.get('pass', 0)}/{sum(o.values())}")
        rows.append(row)
    return rows, failures, missing, informational


LEGEND = [
    "checks passed / run at the bar (f32 1e-4, f16/bf16 1e-2 vs transformers in that dtype);",
    "(n): checks within transformers' own half-precision error (no farther from its f32",
    "outputs than 2x transformers' f16/bf16 run, or keeping labels/tokens it keeps);",
    "model types: those whose run passed (a half-precision check fails a run only beyond (n);",
    "half-precision beam searches are recorded but do not decide it: no margin guards their winner)",
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path)
    p.add_argument("--backend", help="only this backend's runs (cpu, cuda, metal)")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write the table as Markdown")
    p.add_argument("--card", default="", help="the device the runs are from (for --markdown)")
    args = p.parse_args()
    results = json.loads(args.results.read_text())
    rows, failures, missing, informational = tabulate(results, args.backend)
    for f in failures[:30]:
        print("FAIL", f)
    head = ["family", "backend", "f32", "f16", "bf16", "model types"]
    widths = [8, 7, 9, 12, 12, 11]
    print()
    print(" ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths))))
    for row in rows:
        print(" ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
    if missing:
        print("no transformers reference (not counted): " +
              ", ".join(f"{f} {dt} ({n})" for (f, dt), n in sorted(missing.items())))
    if informational:
        print("half-precision beam searches with another winner (recorded, not counted): " +
              ", ".join(informational))
    print("\n".join(LEGEND))

    if args.markdown:
        lines = [f"# {args.backend or 'all backends'}: checks against transformers", ""]
        if args.card:
            lines += [f"Measured on {args.card} by `scripts/gpu-check.sh`.", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines += [""] + [f"{line}" for line in LEGEND]
        if informational:
            lines += ["", "Half-precision beam searches with another winner (recorded, not counted: no margin "
                      "guards which hypothesis wins): " + ", ".join(informational) + "."]
        if failures:
            lines += ["", "Checks past the bar:", ""] + [f"- {f}" for f in failures]
        args.markdown.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
