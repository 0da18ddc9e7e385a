#!/usr/bin/env python3
"""Ratio table of one guard.sh run: the current code over the previous release (BASE).

    python3 bench/compare/guard.py [--min-drain-ratio 0.95] [--smoke] RESULTS_DIR

Reads RESULTS_DIR/base.rep*.json and RESULTS_DIR/current.rep*.json (celeriac-bench --json),
matches their rows by measure name and prints, for each, the median over the repetitions of
both sides and the ratio current/base, the drain of no-op tasks first. Exits 1 when the drain's
median ratio is below the threshold (never with --smoke, whose figures mean nothing), 2 when a
side has no drain figure at all. Standard library only.
"""
import argparse
import glob
import json
import os
import statistics
import sys

LOWER_IS_BETTER = {"ms", "µs", "bytes", "MB", "commands", "% of a core"}
# Display order: the headline first, then the figures the hot-path issues must report.
ORDER = ("drain, no-op tasks", "enqueue, one per call", "enqueue, batches", "Redis CPU per task",
         "Redis commands per task", "enqueue to SUCCESS", "lifecycle, one client", "Redis memory", "HTTP POST")


def load(out, side):
    """{measure: ([values per rep], unit)} of one side."""
    got = {}
    for f in sorted(glob.glob(os.path.join(out, f"{side}.rep*.json"))):
        try:
            doc = json.load(open(f))
        except (OSError, ValueError):
            continue
        for row in doc.get("rows", []):
            vals, _ = got.setdefault(row["measure"], ([], row.get("unit", "")))
            vals.append(row["value"])
    return got


def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and x == x]
    return statistics.median(xs) if xs else None


def fmt(v):
    if v is None:
        return "n/a"
    if v >= 10000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def rank(measure):
    for i, prefix in enumerate(ORDER):
        if measure.startswith(prefix):
            return i
    return len(ORDER)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--min-drain-ratio", type=float, default=0.95)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    base, cur = load(args.out, "base"), load(args.out, "current")
    nb = len(glob.glob(os.path.join(args.out, "base.rep*.json")))
    nc = len(glob.glob(os.path.join(args.out, "current.rep*.json")))
    env = os.path.join(args.out, "env.txt")
    names = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in open(env) if ":" in l} if os.path.exists(env) else {}

    print(f"## Regression guard: current over base ({nb} base and {nc} current run(s), medians)")
    print()
    if args.smoke:
        print("**SMOKE run (`--smoke`, tiny counts): proves the guard runs; the figures mean nothing.**")
        print()
    print(f"base: {names.get('base', '?')}  ")
    print(f"current: {names.get('current', '?')}")
    print()
    print("| measure | unit | base | current | current÷base | better is |")
    print("|---|---|---:|---:|---:|---|")
    measures = sorted(set(base) | set(cur), key=lambda m: (rank(m), m))
    drain = None
    for m in measures:
        bv = med(base[m][0]) if m in base else None
        cv = med(cur[m][0]) if m in cur else None
        unit = (cur.get(m) or base.get(m))[1]
        r = cv / bv if bv and cv is not None else None
        if m.startswith("drain, no-op tasks") and drain is None:
            drain = (m, r)
        cell = "n/a" if r is None else f"{r:.3f}"
        print(f"| {m} | {unit} | {fmt(bv)} | {fmt(cv)} | {cell} | {'lower' if unit in LOWER_IS_BETTER else 'higher'} |")
    print()
    only = [m for m in measures if (m in base) != (m in cur)]
    if only:
        print("Measures only one side reports (renamed or new): " + "; ".join(
            f"`{m}` ({'base' if m in base else 'current'})" for m in only))
        print()
    if drain is None or drain[1] is None:
        print("No drain figure on both sides: see steps.tsv and logs/.")
        return 2
    name, r = drain
    per_rep = []
    for rep in range(1, max(nb, nc) + 1):
        try:
            b = {x["measure"]: x["value"] for x in json.load(open(os.path.join(args.out, f"base.rep{rep}.json")))["rows"]}
            c = {x["measure"]: x["value"] for x in json.load(open(os.path.join(args.out, f"current.rep{rep}.json")))["rows"]}
            per_rep.append(f"{c[name] / b[name]:.3f}")
        except (OSError, ValueError, KeyError, ZeroDivisionError):
            per_rep.append("n/a")
    ok = r >= args.min_drain_ratio
    verdict = "smoke, no verdict" if args.smoke else ("PASS" if ok else "FAIL")
    print(f"**Headline: drain of no-op tasks, current÷base = {r:.3f} (per repetition: {', '.join(per_rep)}); "
          f"threshold {args.min_drain_ratio}: {verdict}.**")
    return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
