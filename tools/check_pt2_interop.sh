#!/usr/bin/env bash
# Interop: oxport loads every fixture .pt2 and saves it again; real PyTorch then loads oxport's files,
# prints them identically, and runs them to the same outputs (tools/check_pt2_interop.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash tools/setup_venv.sh)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cargo run --quiet --release -p oxport-ir --example resave -- "$OUT" tests/fixtures/pt2/*.pt2
"$PY" tools/check_pt2_interop.py "$OUT"
