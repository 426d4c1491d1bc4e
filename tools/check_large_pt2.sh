#!/usr/bin/env bash
# The large reference programs (resnet18, mobilenet_v3_small, vit_b_16, TransformerEncoder, LSTM, GPT
# block; training and core IR), generated on demand by tools/gen_large_pt2.py into
# ~/.cache/oxport/large_pt2: `oxport inspect` must print each exactly as PyTorch does, PyTorch must
# load, print and run the copy oxport saves, and `oxport run` must reproduce PyTorch's outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash tools/setup_venv.sh)
DIR=${OXPORT_LARGE_PT2:-$HOME/.cache/oxport/large_pt2}
"$PY" tools/gen_large_pt2.py "$DIR" 2>/dev/null
cargo build --quiet --release --bin oxport
fail=0
for f in "$DIR"/*.pt2; do
    if ! ./target/release/oxport inspect "$f" | cmp -s - "${f%.pt2}.txt"; then
        echo "prints differently from PyTorch: $f" >&2
        fail=1
    fi
done
[ "$fail" = 0 ] && echo "oxport inspect prints all $(ls "$DIR"/*.pt2 | wc -l) large programs exactly as PyTorch"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# One re-saved copy on disk at a time: the large programs are ~1.5 GB in all.
cargo build --quiet --release -p oxport-ir --example resave
"$PY" tools/check_pt2_interop.py "$OUT" "$DIR" --resave ./target/release/examples/resave 2>&1 | grep -v "^W[0-9]"
[ "$fail" = 0 ] || exit 1
# Runtime coverage: every program (fixtures and large) runs to PyTorch's outputs.
"$PY" tools/check_runtime_coverage.py ./target/release/oxport tests/fixtures/pt2 "$DIR" | tail -1
# run_decompositions on PyTorch's training programs gives PyTorch's core programs (the test skips itself
# when `cargo test` runs before this cache exists, as on a fresh machine).
OXPORT_LARGE_PT2="$DIR" cargo test --quiet -p oxport-export --test decompose_fixtures large 2>&1 | grep "test result"
