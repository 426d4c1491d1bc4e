#!/usr/bin/env bash
# Creates the PyTorch oracle venv outside the repo (once per machine) and prints its python.
# Usage: PY=$(bash tools/setup_venv.sh)
set -euo pipefail
VENV="${OXPORT_VENV:-$HOME/.cache/oxport/venv}"
if ! "$VENV/bin/python" -c "import torch, torchvision, numpy" >/dev/null 2>&1; then
    echo "setting up the PyTorch oracle venv in $VENV (about 5 GB, a few minutes)..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch torchvision numpy safetensors >&2
fi
# safetensors (small) joined later: install it into existing venvs too.
if ! "$VENV/bin/python" -c "import safetensors" >/dev/null 2>&1; then
    "$VENV/bin/pip" install --quiet safetensors >&2
fi
echo "$VENV/bin/python"
