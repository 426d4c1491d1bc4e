#!/usr/bin/env bash
# CI's share of the model corpus (tools/gen_model_corpus.py): the plain nn models, every tiny transformers
# config (encoders, decoder LLMs with a static and a dynamic sequence, seq2seq, vision, audio), and a few
# small torchvision and timm models. Exports them with PyTorch (cached in ~/.cache/oxport/corpus-ci),
# then checks that oxport prints each program as PyTorch does and runs it to PyTorch's outputs.
# The whole corpus (262 programs) runs from the same scripts without --only; see tools/README.md.
set -euo pipefail
cd "$(dirname "$0")"
PY=$(bash setup_venv.sh)
if ! "$PY" -c "import transformers, timm" >/dev/null 2>&1; then
    echo "installing transformers and timm into the oracle venv..." >&2
    "$PY" -m pip install --quiet transformers timm >&2
fi
OUT="${OXPORT_CORPUS_CI:-$HOME/.cache/oxport/corpus-ci}"
SUBSET="nn_,hf_,tv_mobilenet_v3_small,tv_resnet18,tv_squeezenet1_1,tv_shufflenet_v2_x0_5,timm_convnext_atto,timm_mobilevit_xxs,timm_levit_128s,timm_xcit_nano"
"$PY" gen_model_corpus.py --out "$OUT" --only "$SUBSET"
cargo build --release --quiet -p oxport-cli
"$PY" check_model_corpus.py ../target/release/oxport "$OUT" --only "$SUBSET" --strict --compare-plain
