"""The models of tools/bench_peers.py, built from code and configs with random weights (nothing is downloaded).

Imported by the driver (the oracle venv's torch) and by the ExecuTorch worker (its own venv's torch), so it
needs only torch plus, per model, torchvision, timm or transformers. `build(name)` seeds the RNG with 0 and
returns (module in eval mode, args, kwargs); the workers then load the driver's saved state_dict, so every
runtime runs the same weights whatever each torch's RNG does. The plain torch.nn models and the seed program
are tools/collect_ops.py's (as tools/gen_large_pt2.py exports them), built the same way, so their programs
are the same as gen_large_pt2's (but for vit_b_16, whose zero-initialized head is made random here).
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _collect_ops(name):
    def thunk():
        threads = torch.get_num_threads()
        import collect_ops  # sets torch.set_num_threads(1) on first import
        torch.set_num_threads(threads)
        return dict(collect_ops.models())[name]()
    return thunk


def _tv(name, size):
    def thunk():
        import torchvision.models as tvm
        return tvm.get_model(name, weights=None), (torch.randn(1, 3, size, size),), {}
    return thunk


def _timm(name, size):
    def thunk():
        import timm
        return timm.create_model(name, pretrained=False), (torch.randn(1, 3, size, size),), {}
    return thunk


def _vit(thunk):
    """torchvision's ViT zero-initializes its classification head, so its output would be all zeros and the
    output check vacuous: give the head random weights too."""
    def build():
        m, args, kwargs = thunk()
        nn.init.normal_(m.heads.head.weight, std=0.02)
        nn.init.normal_(m.heads.head.bias, std=0.02)
        return m, args, kwargs
    return build


class LastHidden(nn.Module):
    """A transformers encoder returning only `last_hidden_state` (one tensor output for every runtime)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids).last_hidden_state


class Logits(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids, use_cache=False).logits


def _bert_base(seq):
    def thunk():
        import transformers as tf
        cfg = tf.BertConfig()  # BERT-base: hidden 768, 12 layers, 12 heads, intermediate 3072, vocab 30522
        m = LastHidden(tf.BertModel(cfg, add_pooling_layer=False))
        return m, (torch.randint(0, cfg.vocab_size, (1, seq)),), {}
    return thunk


def _llama_prefill(seq):
    def thunk():
        import transformers as tf
        cfg = tf.LlamaConfig(hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=8,
                             num_key_value_heads=2, vocab_size=4096, max_position_embeddings=256, use_cache=False)
        m = Logits(tf.LlamaForCausalLM(cfg))
        return m, (torch.randint(0, cfg.vocab_size, (1, seq)),), {}
    return thunk


# name -> (description, thunk). The order is the table's.
MODELS = {
    "resnet18": ("torchvision resnet18, 1x3x224x224", _tv("resnet18", 224)),
    "mobilenet_v3_small": ("torchvision mobilenet_v3_small, 1x3x224x224", _tv("mobilenet_v3_small", 224)),
    "efficientnet_b0": ("torchvision efficientnet_b0, 1x3x64x64", _tv("efficientnet_b0", 64)),
    "convnext_tiny": ("torchvision convnext_tiny, 1x3x64x64", _tv("convnext_tiny", 64)),
    "resnext50_32x4d": ("torchvision resnext50_32x4d, 1x3x64x64", _tv("resnext50_32x4d", 64)),
    "vit_b_32": ("torchvision vit_b_32, 1x3x224x224, random head", _vit(_tv("vit_b_32", 224))),
    "vit_b_16": ("torchvision vit_b_16, 1x3x224x224, random head", _vit(_tv("vit_b_16", 224))),
    "deit_tiny": ("timm deit_tiny_patch16_224, 1x3x224x224", _timm("deit_tiny_patch16_224", 224)),
    "gpt_block": ("GPT block d64 4 heads, 2x16x64 (collect_ops)", _collect_ops("gpt_block")),
    "transformer_encoder": ("nn.TransformerEncoder 2 layers d64, 2x16x64 (collect_ops)",
                            _collect_ops("transformer_encoder")),
    "bert_base": ("transformers BertModel, BERT-base config, seq 128", _bert_base(128)),
    "llama_prefill": ("transformers LlamaForCausalLM h256 4 layers 8/2 heads vocab 4096, prefill 32 tokens",
                      _llama_prefill(32)),
    "lstm": ("nn.LSTM(16, 32), 2x5x16 (collect_ops)", _collect_ops("lstm")),
    "conv_relu_maxpool": ("the seed program: conv 3->16, add_, relu, maxpool, 1x3x256x256 (collect_ops)",
                          _collect_ops("conv_relu_maxpool")),
}


def build(name):
    torch.manual_seed(0)
    mod, args, kwargs = MODELS[name][1]()
    return mod.eval(), args, kwargs
