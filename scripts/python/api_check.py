"""The API tester: schemathesis, with every check, against a real gateway and worker (started by
celeriac_stack). It reads the document the gateway serves (/openapi.json, the same as the
checked-in openapi.yaml: a Rust test keeps them equal) and must report nothing.

    target/pyenv/bin/python scripts/python/api_check.py [--max-examples N] [extra schemathesis args]

The run is bounded: a fixed seed and at most N examples per operation (default 25), so CI
stays short and a failure is reproducible.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from celeriac_stack import ROOT, Stack  # noqa: E402


# The gateway runs with an admin token (so the tester also sees 401 without it).
TOKEN = "api-check-admin-token-0001"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("API_CHECK_MAX_EXAMPLES", "25")))
    parser.add_argument("--seed", type=int, default=1)
    args, extra = parser.parse_known_args()
    schemathesis = Path(sys.executable).parent / "schemathesis"
    report = ROOT / "target" / "api-check"
    with Stack.start(extra_env={"CELERIAC__AUTH__ADMIN_TOKENS": TOKEN}) as stack:
        command = [
            str(schemathesis), "--config-file", str(Path(__file__).parent / "schemathesis.toml"),
            "run", f"{stack.url}/openapi.json",
            "--checks", "all",
            "--max-examples", str(args.max_examples),
            "--seed", str(args.seed),
            "--generation-database", "none",
            # One worker: Python 3.11's ast module is not thread-safe, and hypothesis parses
            # lambdas with it (two workers failed once with "AST constructor recursion depth mismatch").
            "--workers", "1",
            "--request-timeout", "70",
            "--report", "junit", "--report-dir", str(report),
            "--header", f"Authorization: Bearer {TOKEN}",
            "--no-color",
            *extra,
        ]
        print("running:", " ".join(command), flush=True)
        report.mkdir(parents=True, exist_ok=True)
        status = subprocess.call(command, cwd=report)  # its cache (.schemathesis/) stays there
        if status != 0:
            print(f"--- gateway log (tail) ---\n{stack.log('api')[-4000:]}")
        return status


if __name__ == "__main__":
    sys.exit(main())
