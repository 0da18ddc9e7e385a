#!/usr/bin/env bash
# Creates (or brings up to date) the Python environment of the Python tests in target/pyenv,
# from the pinned scripts/python/requirements.txt, and installs the client package
# (clients/python) into it in editable mode. Prints nothing when it is up to date.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENV="${CARGO_TARGET_DIR:-target}/pyenv"
REQ=scripts/python/requirements.txt
[ -x "$ENV/bin/python" ] || python3 -m venv "$ENV"
if ! cmp -s "$REQ" "$ENV/.requirements"; then
  "$ENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$ENV/.requirements"
fi
if [ -d clients/python ]; then
  "$ENV/bin/pip" install -q --disable-pip-version-check --no-deps -e clients/python
fi
