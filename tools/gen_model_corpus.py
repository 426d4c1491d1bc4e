#!/usr/bin/env python3
"""A broad corpus of real models exported by PyTorch, for runtime and printing coverage (never committed).

Models are built from code and configs with random weights (nothing is downloaded): torchvision
classification, segmentation and video models, plain torch.nn models (GRU, RNN, nn.Transformer, a UNet with
GroupNorm/ConvTranspose2d/interpolate, EmbeddingBag, grid_sample), and, when installed, timm models and tiny
Hugging Face transformers configs. Each is exported in eval mode by torch.export (training IR, `train`) and
decomposed (`core`), saved, loaded back, printed, and run by `ep.module()` on seeded inputs.

Writes into OUT_DIR (default ~/.cache/oxport/corpus), per program NAME.FORM: .pt2, .txt (PyTorch's print of
the loaded program), .in_<i>.npy, .out_<j>.npy, and manifest.json in the format of
tests/fixtures/pt2/manifest.json (plus "source"), with "skipped" listing models whose export failed in
PyTorch. Programs already there for the installed torch are kept, so reruns are incremental.

Run:  ~/.cache/oxport/venv/bin/python tools/gen_model_corpus.py [--out DIR] [--only A,B] [--max-params N] [--f64]
Then: cd tools && python3 check_model_corpus.py ../target/release/oxport  (prints, runs and compares every
program with oxport; tools/check_corpus_ci.sh does both for CI's subset)
"""
import argparse
import json
import os
import time
import traceback

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn

torch.set_num_threads(2)


# ---------------------------------------------------------------- plain torch.nn models
class GRUModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16, num_layers=2, batch_first=True)
        self.rnn = nn.RNN(16, 8, nonlinearity="tanh")

    def forward(self, x):
        y, h = self.gru(x)
        z, _ = self.rnn(y.transpose(0, 1))
        return z, h


class TinyUNet(nn.Module):
    """Conv2d, GroupNorm(8), SiLU, ConvTranspose2d(k=2, s=2), F.interpolate nearest x2, torch.cat skips."""

    def __init__(self):
        super().__init__()
        self.down1 = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.GroupNorm(8, 16), nn.SiLU())
        self.down2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GroupNorm(8, 32), nn.SiLU())
        self.mid = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.GroupNorm(8, 32), nn.SiLU())
        self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.out = nn.Conv2d(32, 3, 1)
        self.side = nn.Conv2d(32, 16, 1)

    def forward(self, x):
        a = self.down1(x)
        b = self.down2(a)
        m = self.mid(b)
        u = self.up(m)
        s = nn.functional.interpolate(self.side(m), scale_factor=2, mode="nearest")
        return self.out(torch.cat([u + s, a], dim=1))


class BagModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(50, 8, mode="mean")
        self.emb = nn.Embedding(50, 8, padding_idx=0)

    def forward(self, ids, offsets):
        return self.bag(ids, offsets), self.emb(ids).sum(0)


class GridSample(nn.Module):
    def forward(self, x, grid):
        return nn.functional.grid_sample(x, grid, mode="bilinear", align_corners=False)


def plain_models():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    yield "nn_gru_rnn", lambda: (GRUModel(), (r(2, 5, 8),))
    yield "nn_transformer", lambda: (nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2,
                                                    num_decoder_layers=2, dim_feedforward=64,
                                                    batch_first=True), (r(2, 6, 32), r(2, 5, 32)))
    yield "nn_unet", lambda: (TinyUNet(), (r(1, 3, 32, 32),))
    yield "nn_embedding_bag", lambda: (BagModel(), (torch.randint(0, 50, (12,), generator=g),
                                                    torch.tensor([0, 3, 7])))
    yield "nn_grid_sample", lambda: (GridSample(), (r(1, 2, 6, 7), torch.rand(1, 4, 5, 2, generator=g) * 2 - 1))


# ---------------------------------------------------------------- torchvision
def torchvision_models():
    import torchvision.models as tvm
    for name in sorted(tvm.list_models(module=tvm)):
        size = 299 if name == "inception_v3" else 224
        kwargs = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}
        yield f"tv_{name}", (lambda name=name, size=size, kwargs=kwargs:
                             (tvm.get_model(name, weights=None, **kwargs), (torch.randn(1, 3, size, size),)))
    import torchvision.models.segmentation as seg
    for name in ("fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"):
        yield f"tv_seg_{name}", (lambda name=name: (seg.__dict__[name](weights=None, weights_backbone=None,
                                                                        num_classes=5),
                                                    (torch.randn(1, 3, 96, 96),)))
    # Detection: torch.export 2.15 cannot export these (data-dependent guards in the box heads); they
    # are kept here so the corpus records PyTorch's reason, and so they join when export learns them.
    import torchvision.models.detection as det
    for name in ("fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn",
                 "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large", "ssd300_vgg16", "maskrcnn_resnet50_fpn",
                 "keypointrcnn_resnet50_fpn"):
        yield f"tv_det_{name}", (lambda name=name: (det.__dict__[name](weights=None, weights_backbone=None,
                                                                       num_classes=5),
                                                    ([torch.rand(3, 128, 128)],)))
    import torchvision.models.video as video
    for name in ("r3d_18", "mc3_18", "r2plus1d_18", "s3d"):
        yield f"tv_video_{name}", (lambda name=name: (video.__dict__[name](weights=None),
                                                      (torch.randn(1, 3, 8, 64, 64),)))


# ---------------------------------------------------------------- timm (when installed)
TIMM = ("convnext_atto", "efficientformer_l1", "fastvit_t8", "mobilevit_xxs", "levit_128s", "ghostnet_100",
        "poolformer_s12", "hrnet_w18_small", "swin_tiny_patch4_window7_224", "eva02_tiny_patch14_224",
        "xcit_nano_12_p16_224", "coat_lite_tiny", "resnet18d", "efficientnet_b0", "mixer_b16_224",
        "deit_tiny_patch16_224", "regnety_002", "mobilenetv3_small_050", "densenet121", "dla34",
        "beit_base_patch16_224", "cait_xxs24_224", "crossvit_tiny_240", "convmixer_768_32", "edgenext_xx_small",
        "efficientvit_b0", "gcvit_xxtiny", "mobileone_s0", "nf_resnet26", "pvt_v2_b0", "repvgg_a0",
        "res2net50_14w_8s", "resnest14d", "rexnet_100", "sequencer2d_s", "twins_pcpvt_small", "visformer_tiny",
        "volo_d1_224", "tinynet_e", "inception_next_tiny", "mambaout_femto", "hgnetv2_b0", "lcnet_050",
        "tiny_vit_5m_224", "vit_small_patch16_224")


def timm_models():
    try:
        import timm
    except ImportError:
        return
    for name in TIMM:
        yield f"timm_{name}", (lambda name=name: (timm.create_model(name, pretrained=False),
                                                  (torch.randn(1, 3, 224, 224),)))


# ---------------------------------------------------------------- transformers (when installed)
def hf_models():
    """Tiny random configs (2 layers, width 32) of the transformers architectures people deploy.

    A build returns (module, args) or (module, args, kwargs, dynamic_shapes). `hf_*_dynseq` programs are
    exported with a dynamic sequence length, as LLM serving needs.
    """
    try:
        import transformers as tf
    except ImportError:
        return
    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                vocab_size=128, max_position_embeddings=64, use_cache=False)
    ids = lambda s=12: torch.randint(0, 128, (2, s))  # noqa: E731

    def model(cls, cfg_cls, inputs=None, **extra):
        def build():
            cfg = cfg_cls(**{**tiny, **extra})
            m = cls(cfg)
            return (m, (ids(),)) if inputs is None else (m, (), inputs(), None)
        return build

    def dynseq(cls, cfg_cls, **extra):
        def build():
            m = cls(cfg_cls(**{**tiny, **extra}))
            seq = torch.export.Dim("seq", min=2, max=48)
            return m, (), {"input_ids": ids(10)}, {"input_ids": {1: seq}}
        return build

    yield "hf_bert", model(tf.BertModel, tf.BertConfig)
    yield "hf_roberta", model(tf.RobertaModel, tf.RobertaConfig)
    yield "hf_albert", model(tf.AlbertModel, tf.AlbertConfig, embedding_size=16)
    yield "hf_deberta_v2", model(tf.DebertaV2Model, tf.DebertaV2Config)
    yield "hf_distilbert", lambda: (tf.DistilBertModel(tf.DistilBertConfig(
        dim=32, n_layers=2, n_heads=4, hidden_dim=64, vocab_size=128, max_position_embeddings=64)), (ids(),))
    yield "hf_mobilebert", model(tf.MobileBertModel, tf.MobileBertConfig, embedding_size=16,
                                 intra_bottleneck_size=16, true_hidden_size=16, num_feedforward_networks=2)
    yield "hf_electra", model(tf.ElectraModel, tf.ElectraConfig, embedding_size=16)
    yield "hf_gpt2", lambda: (tf.GPT2Model(tf.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=128,
                                                          n_positions=64, use_cache=False)), (ids(),))
    yield "hf_llama", model(tf.LlamaModel, tf.LlamaConfig, num_key_value_heads=2)
    yield "hf_mistral", model(tf.MistralModel, tf.MistralConfig, num_key_value_heads=2)
    yield "hf_qwen2", model(tf.Qwen2Model, tf.Qwen2Config, num_key_value_heads=2)
    yield "hf_qwen3", model(tf.Qwen3Model, tf.Qwen3Config, num_key_value_heads=2, head_dim=8)
    yield "hf_gemma", model(tf.GemmaModel, tf.GemmaConfig, num_key_value_heads=2, head_dim=8)
    yield "hf_phi3", model(tf.Phi3Model, tf.Phi3Config, num_key_value_heads=2, pad_token_id=0)
    yield "hf_bloom", lambda: (tf.BloomModel(tf.BloomConfig(hidden_size=32, n_layer=2, n_head=4,
                                                             vocab_size=128, use_cache=False)), (ids(),))
    t5 = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, vocab_size=128, decoder_start_token_id=0,
              use_cache=False)
    yield "hf_t5_encoder", lambda: (tf.T5EncoderModel(tf.T5Config(**t5)), (ids(),))
    yield "hf_t5", lambda: (tf.T5Model(tf.T5Config(**t5)), (),
                            {"input_ids": ids(), "decoder_input_ids": ids(5)}, None)
    bart = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=128,
                max_position_embeddings=64, use_cache=False)
    yield "hf_bart", lambda: (tf.BartModel(tf.BartConfig(**bart)), (),
                              {"input_ids": ids(), "decoder_input_ids": ids(5)}, None)
    whisper = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                   decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=128,
                   num_mel_bins=16, max_source_positions=20, max_target_positions=32, pad_token_id=0,
                   bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                   use_cache=False)
    yield "hf_whisper", lambda: (tf.WhisperModel(tf.WhisperConfig(**whisper)), (),
                                 {"input_features": torch.randn(1, 16, 40),
                                  "decoder_input_ids": torch.randint(0, 128, (1, 5))}, None)
    vit = dict(tiny, image_size=32, patch_size=8, num_channels=3)
    del vit["vocab_size"], vit["max_position_embeddings"], vit["use_cache"]
    yield "hf_vit", lambda: (tf.ViTModel(tf.ViTConfig(**vit)), (torch.randn(1, 3, 32, 32),))
    yield "hf_clip_text", lambda: (tf.CLIPTextModel(tf.CLIPTextConfig(**tiny)), (ids(),))
    yield "hf_clip_vision", lambda: (tf.CLIPVisionModel(tf.CLIPVisionConfig(**vit)),
                                     (torch.randn(1, 3, 32, 32),))
    yield "hf_wav2vec2", lambda: (tf.Wav2Vec2Model(tf.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4)), (torch.randn(1, 400),))
    yield "hf_llama_dynseq", dynseq(tf.LlamaForCausalLM, tf.LlamaConfig, num_key_value_heads=2)
    yield "hf_qwen2_dynseq", dynseq(tf.Qwen2ForCausalLM, tf.Qwen2Config, num_key_value_heads=2)
    yield "hf_gpt2_dynseq", lambda: (tf.GPT2LMHeadModel(tf.GPT2Config(n_embd=32, n_layer=2, n_head=4,
                                                                       vocab_size=128, n_positions=64,
                                                                       use_cache=False)), (),
                                     {"input_ids": ids(10)},
                                     {"input_ids": {1: torch.export.Dim("seq", min=2, max=48)}})


# ---------------------------------------------------------------- export + record
def leaf_spec(x):
    if isinstance(x, torch.Tensor):
        return {"kind": "tensor", "dtype": str(x.dtype).split(".")[-1], "shape": list(x.shape)}
    return {"kind": type(x).__name__, "value": x}


def to_np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.array(x)


class CoreFormError(Exception):
    """PyTorch exported the model but could not decompose it (the training IR program is kept)."""


def record(out_dir, name, source, build, manifest):
    torch.manual_seed(0)
    built = build()
    mod, args = built[0], built[1]
    kwargs, dynamic_shapes = (built[2], built[3]) if len(built) == 4 else ({}, None)
    mod.eval()
    t0 = time.time()
    ep = torch.export.export(mod, args, kwargs, dynamic_shapes=dynamic_shapes)
    export_s = time.time() - t0
    flat_in = pytree.tree_leaves((args, kwargs))
    for form in ("train", "core"):
        try:
            prog = ep if form == "train" else ep.run_decompositions()
        except Exception as e:  # noqa: BLE001 - recorded as the model's skip reason, naming the step
            raise CoreFormError(f"run_decompositions(): {type(e).__name__}: {e}") from e
        base = os.path.join(out_dir, f"{name}.{form}")
        prog.example_inputs = None
        torch.export.save(prog, base + ".pt2")
        loaded = torch.export.load(base + ".pt2")
        with open(base + ".txt", "w") as f:
            f.write(str(loaded))
        with torch.no_grad():
            outs = pytree.tree_leaves(loaded.module()(*args, **kwargs))
        for i, x in enumerate(flat_in):
            np.save(f"{base}.in_{i}.npy", to_np(x))
        for j, y in enumerate(outs):
            np.save(f"{base}.out_{j}.npy", to_np(y))
        manifest["cases"] = [c for c in manifest["cases"] if (c["name"], c["form"]) != (name, form)]
        manifest["cases"].append({
            "name": name, "form": form, "source": source, "pt2": f"{name}.{form}.pt2",
            "pt2_size": os.path.getsize(base + ".pt2"),
            "inputs": [leaf_spec(x) for x in flat_in], "outputs": [leaf_spec(y) for y in outs],
            "torch_export_seconds": round(export_s, 3),
        })
    return export_s


def f64_reference(out_dir, name, build):
    """PyTorch's outputs in float64 (`NAME.f64.out_<j>.npy`): the yardstick for deep random-weight nets,
    whose f32 outputs reach 1e4-1e5 where PyTorch's own f32 result is off by more than an elementwise
    1e-4 tolerance. check_model_corpus.py accepts oxport when its error against this is within twice
    PyTorch's own."""
    torch.manual_seed(0)
    built = build()
    mod, args = built[0], built[1]
    kwargs = built[2] if len(built) == 4 else {}
    to64 = lambda x: x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x  # noqa: E731
    mod = mod.eval().double()
    with torch.no_grad():
        outs = pytree.tree_leaves(mod(*pytree.tree_map(to64, args), **pytree.tree_map(to64, kwargs)))
    for j, y in enumerate(outs):
        np.save(os.path.join(out_dir, f"{name}.f64.out_{j}.npy"), to_np(y))


def selected(name, only):
    """Whether `name` starts with one of the comma-separated prefixes `only` (all names when empty)."""
    return any(name.startswith(part) for part in only.split(","))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.expanduser("~/.cache/oxport/corpus"))
    ap.add_argument("--only", default="", help="only models whose name starts with one of these (comma-separated)")
    ap.add_argument("--max-params", type=float, default=60e6, help="skip larger models (memory, time)")
    ap.add_argument("--f64", action="store_true",
                    help="add float64 reference outputs to the programs already there (with --only)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "manifest.json")
    manifest = {"torch_version": torch.__version__, "cases": [], "skipped": {}}
    if os.path.exists(path):
        old = json.load(open(path))
        if old.get("torch_version") == torch.__version__:
            manifest = old
    done = {c["name"] for c in manifest["cases"]}
    sources = [("nn", plain_models()), ("torchvision", torchvision_models()),
               ("timm", timm_models()), ("transformers", hf_models())]
    if a.f64:
        for source, models in sources:
            for name, build in models:
                if selected(name, a.only) and name in done:
                    try:
                        f64_reference(a.out, name, build)
                        print(f"[{name}] float64 reference written", flush=True)
                    except Exception as e:  # noqa: BLE001 - some models cannot run in float64
                        print(f"[{name}] no float64 reference: {type(e).__name__}: {e}", flush=True)
        return
    for source, models in sources:
        for name, build in models:
            if not selected(name, a.only) or name in done or name in manifest["skipped"]:
                continue
            t0 = time.time()
            try:
                torch.manual_seed(0)
                mod = build()[0]
                n = sum(p.numel() for p in mod.parameters())
                if n > a.max_params:
                    manifest["skipped"][name] = f"{n / 1e6:.0f}M parameters (over --max-params)"
                    print(f"[{name}] skipped: {n / 1e6:.0f}M parameters", flush=True)
                    continue
                del mod
                s = record(a.out, name, source, build, manifest)
                print(f"[{name}] exported in {s:.1f}s, total {time.time() - t0:.1f}s", flush=True)
            except Exception as e:  # noqa: BLE001 - a model PyTorch cannot export is recorded, not fatal
                manifest["skipped"][name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                print(f"[{name}] PyTorch failed: {manifest['skipped'][name]}", flush=True)
                if os.environ.get("CORPUS_TRACEBACK"):
                    traceback.print_exc()
            with open(path, "w") as f:
                json.dump(manifest, f, indent=1)
    print(f"{len(manifest['cases'])} programs in {a.out}, {len(manifest['skipped'])} models skipped")


if __name__ == "__main__":
    main()
