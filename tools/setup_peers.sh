#!/usr/bin/env bash
# Installs what tools/bench_peers.py needs, outside the repo, idempotently (a second run only checks):
#   ~/.cache/oxport/venv             the PyTorch oracle venv (tools/setup_venv.sh) plus onnxruntime, onnx,
#                                    onnxscript, psutil, timm and transformers
#   ~/.cache/oxport/venv-executorch  executorch with the torch it was released against (ExecuTorch's
#                                    pybindings link libtorch, so it cannot share the oracle venv's torch),
#                                    plus torchvision, timm and transformers to build the same models there
# Prints the two pythons, one per line. Usage: bash tools/setup_peers.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=$(bash "$HERE/setup_venv.sh")
VENV="$(dirname "$(dirname "$PY")")"
ET_VENV="${OXPORT_ET_VENV:-$HOME/.cache/oxport/venv-executorch}"
# ExecuTorch 1.5.1 was validated by its release against torch 2.14.0 / torchvision 0.29.0.
ET_VERSION="${OXPORT_ET_VERSION:-1.5.1}"
ET_TORCH="${OXPORT_ET_TORCH:-2.14.0}"
ET_TORCHVISION="${OXPORT_ET_TORCHVISION:-0.29.0}"

if ! "$PY" -c "import onnxruntime, onnx, onnxscript, psutil, timm, transformers" >/dev/null 2>&1; then
    echo "installing onnxruntime, onnx, onnxscript, psutil, timm, transformers into $VENV ..." >&2
    "$VENV/bin/pip" install --quiet onnxruntime onnx onnxscript psutil timm transformers >&2
fi

et_ok() {
    "$ET_VENV/bin/python" - <<EOF >/dev/null 2>&1
import torch, torchvision, timm, transformers, psutil, numpy
from importlib.metadata import version
from executorch.runtime import Runtime
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
assert torch.__version__.split("+")[0] == "$ET_TORCH", torch.__version__
assert version("executorch").split("+")[0] == "$ET_VERSION", version("executorch")
EOF
}

if ! et_ok; then
    echo "setting up the ExecuTorch venv in $ET_VENV (executorch $ET_VERSION, torch $ET_TORCH) ..." >&2
    [ -x "$ET_VENV/bin/python" ] || python3 -m venv "$ET_VENV"
    # --no-cache-dir: torch's wheel and its CUDA libraries (needed by `import torch` even on a CPU-only
    # machine) are ~5 GB; a cached copy would double that.
    "$ET_VENV/bin/pip" install --quiet --no-cache-dir "executorch==$ET_VERSION" "torch==$ET_TORCH" \
        "torchvision==$ET_TORCHVISION" timm transformers psutil numpy >&2
    if ! et_ok; then
        echo "the ExecuTorch venv in $ET_VENV does not import; see:" >&2
        "$ET_VENV/bin/python" -c "import torch; from executorch.runtime import Runtime" >&2 || true
        exit 1
    fi
fi
echo "$PY"
echo "$ET_VENV/bin/python"
