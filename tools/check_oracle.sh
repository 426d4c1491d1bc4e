#!/usr/bin/env bash
# Regenerates every checked-in oracle artifact with real PyTorch and fails if any differs from the
# committed copy: the schema table, the model op census, the op fixtures and the .pt2 program fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash tools/setup_venv.sh)
"$PY" tools/gen_schemas.py
"$PY" tools/collect_ops.py >/dev/null
"$PY" tools/gen_op_fixtures.py >/dev/null
LOG=$(mktemp)
"$PY" tools/gen_export_fixtures.py >/dev/null 2>&1
"$PY" tools/gen_pt2_fixtures.py >"$LOG" 2>&1 || { tail -40 "$LOG"; echo "tools/gen_pt2_fixtures.py failed" >&2; exit 1; }
rm -f "$LOG"
# The static-KV-cache LLaMA (tests/fixtures/llm) needs transformers, which the venv may lack.
if "$PY" -c "import transformers" >/dev/null 2>&1; then
    "$PY" tools/gen_llm_static_cache.py >/dev/null 2>&1
else
    echo "skipping tests/fixtures/llm: transformers is not installed in the venv" >&2
fi
# New or deleted files, or changes beyond the last bits of kernel-computed floats (which vary between CPU
# models), mean the committed data is not what PyTorch produces.
CHANGED=$( { git diff --name-only -- crates/oxport-core/src/ops/schemas.txt tools/data tests/fixtures;
             git ls-files --others --exclude-standard -- tests/fixtures tools/data; } | sort -u)
if [ -n "$CHANGED" ] && ! "$PY" tools/fixtures_equal.py $CHANGED; then
    echo "oracle artifacts differ from what PyTorch produces now: regenerate and commit them" >&2
    exit 1
fi
echo "oracle artifacts match PyTorch $("$PY" -c 'import torch; print(torch.__version__)')"
