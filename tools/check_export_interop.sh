#!/usr/bin/env bash
# Export interop (CI): every Rust zoo model is exported by examples/export_zoo, and real PyTorch checks
# the print against the model's PyTorch twin, loads the .pt2, and runs it to the Rust eager outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash tools/setup_venv.sh)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MODELS="sin_cos conv_relu_maxpool resnet18 mobilenet_v3_small transformer_encoder lstm gpt_block"
cargo build --quiet --release --example export_zoo
for m in $MODELS; do
    ./target/release/examples/export_zoo --model "$m" --out "$OUT/$m"
done
# Every zoo model, exported again to Core ATen (run_decompositions).
for m in sin_cos conv_relu_maxpool resnet18 mobilenet_v3_small transformer_encoder lstm gpt_block; do
    ./target/release/examples/export_zoo --model "$m" --core --out "$OUT/$m.core"
    MODELS="$MODELS $m.core"
done
# The models whose example batch is not 1, exported again with a dynamic batch.
DYNAMIC="sin_cos transformer_encoder lstm gpt_block"
for m in $DYNAMIC; do
    ./target/release/examples/export_zoo --model "$m" --dynamic-batch --out "$OUT/$m.dynamic_batch"
    MODELS="$MODELS $m.dynamic_batch"
done
# PyTorch's own resnet18 weights (from tools/gen_large_pt2.py) loaded into the Rust model.
LARGE=${OXPORT_LARGE_PT2:-$HOME/.cache/oxport/large_pt2}
"$PY" tools/gen_large_pt2.py "$LARGE" >/dev/null 2>&1
export RESNET18_WEIGHTS="$LARGE/resnet18.train.pt2"
./target/release/examples/export_zoo --model resnet18 --weights "$RESNET18_WEIGHTS" --out "$OUT/resnet18_torch_weights"
"$PY" tools/check_export_interop.py "$OUT" $MODELS 2>&1 | grep -v "^W[0-9]"
# Symbolic ints where ints go (arange(s), full([s, 4]), view([s * 4, -1]), slice bounds, scalars from sizes).
OXPORT_SYM_INTS_PT2="$OUT/sym_ints" cargo test --quiet --release -p oxport-export --test sym_ints
"$PY" tools/check_sym_ints_interop.py "$OUT/sym_ints"
