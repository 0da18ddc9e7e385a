"""bench/compare/compare.py reads the latency under other producers' load of Celeriac's worker
and of the latency yardstick from celeriac-bench's JSON, into the two rows that compare them
(the yardstick's cell is n/a for a bench from before the latency yardstick)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LOADED = "enqueue to SUCCESS, worker under load (20000 other tasks/s), {}"


def table_row(out_dir, label):
    report = subprocess.run([sys.executable, str(ROOT / "bench/compare/compare.py"), str(out_dir)],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [line for line in report.splitlines() if line.startswith(f"| {label} |")]
    assert len(rows) == 1, report
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def write_reps(out_dir, reps):
    for i, rows in enumerate(reps, 1):
        doc = {"rows": [{"measure": m, "value": v, "unit": "ms"} for m, v in rows.items()]}
        (out_dir / f"celeriac.rep{i}.json").write_text(json.dumps(doc))


def test_the_p99_under_load_is_read_against_the_latency_yardstick(tmp_path):
    write_reps(tmp_path, [
        {LOADED.format("p99"): 2.0, "latency yardstick: " + LOADED.format("p99"): 1.0},
        {LOADED.format("p99"): 3.0, "latency yardstick: " + LOADED.format("p99"): 1.0},
        {LOADED.format("p99"): 2.2, "latency yardstick: " + LOADED.format("p99"): 1.1},
    ])
    cells = table_row(tmp_path, "e2e latency p99 while other producers enqueue 20,000 tasks/s (lower is better)")
    # measure, unit, Celeriac, yardstick, Celery, BullMQ, Sidekiq, three ratios, Celeriac÷yardstick
    assert cells[2:4] == ["2.20", "1.00"], cells
    assert cells[-1] == "0.45x", cells


def test_a_bench_without_the_latency_yardstick_leaves_its_cell_empty(tmp_path):
    write_reps(tmp_path, [{LOADED.format("p50"): 0.5}])
    cells = table_row(tmp_path, "e2e latency p50 while other producers enqueue 20,000 tasks/s (lower is better)")
    assert cells[2:4] == ["0.50", "n/a"], cells
