#!/usr/bin/env python3
"""A tiny LLaMA exported with a static KV cache, and PyTorch's greedy decode of the saved program.

Builds a LlamaForCausalLM from a tiny LlamaConfig with seeded random weights (nothing is downloaded), wraps it
in transformers' `TorchExportableModuleWithStaticCache` (the KV cache as buffers the graph mutates) and exports
it with `convert_and_export_with_cache`: one token per call, kwargs `input_ids` [1, 1] and `cache_position` [1].
Two forms are written: `train`, the training IR as the helper returns it (the cache updated in place by
`index_copy_` / `copy_` / `add_` nodes on the buffers), and `core`, `ep.run_decompositions()` (functionalized:
the new caches are BUFFER_MUTATION outputs of the graph signature, written by `index_put`). Each is saved with
`torch.export.save`, loaded back, and `torch.export.load(...).module()` decodes greedily: the prompt is fed
token by token through the same program (prefill), then each argmax token is fed back, STEPS times. The loaded module keeps its buffers between calls, so the cache carries over.

Writes into OUT_DIR (default tests/fixtures/llm, small enough to commit: ~1 MB each, mostly stack traces;
deterministic, normalized as tools/gen_pt2_fixtures.py normalizes its programs):
  llama_static_cache.{train,core}.pt2   the programs
  llama_static_cache.{train,core}.txt   PyTorch's print of each loaded program
  llama_static_cache.json               {"prompt": [...], "steps": N, "tokens": {"train": [...], "core": [...]},
                                         "min_top2_logit_gap": {...}, "config": {...}}
(the gap between the top two logits at each greedy step, at its smallest, says how far the decode is from
a tie that rounding could flip; ~0.02 here, far above f32 noise).

Run:  ~/.cache/oxport/venv/bin/python tools/gen_llm_static_cache.py [--out DIR] [--steps 32]
Check: cargo run --release -p oxport --example generate -- tests/fixtures/llm/llama_static_cache.core.pt2 \
         --prompt 1,2,3,4,5 --steps 32
"""
import argparse
import io
import json
import math
import os
import sys

import torch
import transformers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
from transformers.integrations.executorch import convert_and_export_with_cache

torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_pt2_fixtures  # noqa: E402
MAX_CACHE_LEN = 64
PROMPT = [1, 2, 3, 4, 5]
CONFIG = dict(
    vocab_size=256,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=MAX_CACHE_LEN,
    # Larger than LLaMA's 0.02 so that random logits are peaked and the greedy decode varies.
    initializer_range=0.3,
    tie_word_embeddings=False,
)


def build_model():
    torch.manual_seed(0)
    config = LlamaConfig(**CONFIG)
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        use_cache=True,
        cache_implementation="static",
        max_length=MAX_CACHE_LEN,
        cache_config={"batch_size": 1, "max_cache_len": MAX_CACHE_LEN, "device": "cpu"},
    )
    return model


def decode(module, prompt, steps):
    """Greedy decode through the program, one token per call; returns the generated ids and the smallest
    gap between the top two logits (how far the argmaxes are from a tie)."""
    out, margin = [], float("inf")
    pos = 0
    logits = None
    with torch.no_grad():
        for tok in prompt:
            logits = module(input_ids=torch.tensor([[tok]]), cache_position=torch.tensor([pos]))
            pos += 1
        for _ in range(steps):
            top = torch.topk(logits[0, -1], 2).values
            margin = min(margin, float(top[0] - top[1]))
            nxt = int(torch.argmax(logits[0, -1]).item())
            out.append(nxt)
            logits = module(input_ids=torch.tensor([[nxt]]), cache_position=torch.tensor([pos]))
            pos += 1
    # Rounded down to 1e-3: the gap is a difference of logits whose last bits vary between CPU models
    # (checked by tools/check_oracle.sh on whatever machine runs it).
    return out, math.floor(margin * 1000) / 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "llm"))
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    assert len(PROMPT) + args.steps <= MAX_CACHE_LEN
    os.makedirs(args.out, exist_ok=True)

    model = build_model()
    ep = convert_and_export_with_cache(model)
    tokens, margins = {}, {}
    for form, prog in (("train", ep), ("core", ep.run_decompositions())):
        path = os.path.join(args.out, f"llama_static_cache.{form}.pt2")
        # As the other .pt2 fixtures: relative stack-trace paths, renumbered module ids and provenance
        # graph ids (memory addresses), a deterministic archive, so a rerun gives the same bytes.
        gen_pt2_fixtures.normalize_stack_traces(prog)
        gen_pt2_fixtures.normalize_nn_module_stack(prog)
        gen_pt2_fixtures.normalize_from_node(prog)
        buf = io.BytesIO()
        torch.export.save(prog, buf)
        with open(path, "wb") as f:
            f.write(gen_pt2_fixtures.normalize_torch_zip(buf.getvalue()))
        loaded = torch.export.load(path)
        with open(os.path.join(args.out, f"llama_static_cache.{form}.txt"), "w") as f:
            f.write(str(loaded))
        tokens[form], margins[form] = decode(loaded.module(), PROMPT, args.steps)
        print(path, os.path.getsize(path), "bytes:", PROMPT, "->", tokens[form], "min top-2 gap", margins[form])
    record = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "config": dict(CONFIG, max_cache_len=MAX_CACHE_LEN),
        "prompt": PROMPT,
        "steps": args.steps,
        "tokens": tokens,
        "min_top2_logit_gap": margins,
    }
    with open(os.path.join(args.out, "llama_static_cache.json"), "w") as f:
        f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in record.items()) + "\n}\n")

if __name__ == "__main__":
    main()
