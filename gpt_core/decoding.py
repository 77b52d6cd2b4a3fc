"""Generation's weights: each matrix a new token is multiplied by, in the layout and dtype that
one-row products read fastest.

Decoding multiplies one row per token by every matrix of the model, so it is bound by how fast
the matrices stream from memory. Two things make them stream faster:

- Layout. A one-row product `x @ W.T` reads an input-major matrix ([in, out] in memory, the
  parameter being its transposed view) markedly faster on a CPU than nn.Linear's [out, in];
  the GPT-2 cache stores its matrices that way for this reason (`gpt2/convert.py`,
  `Target.input_major`). `INPUT_MAJOR` says which: the attention's query, key, value and output
  projections, the feed-forward's first layer and the output head (measured per shape in
  benchmarks/bench_generate.py; the feed-forward's second layer reads as fast as it is).
- Dtype. bfloat16 weights are half the bytes: the "bfloat16" precision decodes on a bfloat16
  copy with a bfloat16 KV cache, while the residual stream, the layer norms and the logits
  handed to sampling stay float32 (the mixed precision of training).

A parameter already in the wanted layout and dtype (GPT-2 read from its cache, in float32) is
used as it is; any other is copied once, when the KV cache is made. A KV cache lives for one
generation (`generate` makes a new one per call), so the copy is of the weights as they are
when the generation starts: training the model between two generations cannot leave one
reading stale weights. The training path never sees these copies.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Per block, the modules whose weight decoding reads input-major; the output head too.
INPUT_MAJOR = ("att.W_query", "att.W_key", "att.W_value", "att.out_proj", "ff.layers.0")


def is_input_major(weight: torch.Tensor) -> bool:
    """Whether an [out, in] weight is the transposed view of an [in, out] matrix in memory."""
    return weight.dim() == 2 and weight.t().is_contiguous() and not weight.is_contiguous()


def decode_layout(weight: torch.Tensor, dtype: torch.dtype, input_major: bool) -> torch.Tensor:
    """`weight` ([out, in], as nn.Linear holds it) in `dtype`, input-major in memory when asked:
    the parameter itself when it already is, else a copy."""
    weight = weight.detach()
    if weight.dtype == dtype and (not input_major or is_input_major(weight)):
        return weight
    if not input_major:
        return weight.to(dtype).contiguous()
    return weight.t().to(dtype).contiguous().t()  # same values, stored [in, out]


class DecodeWeights:
    """The weights and biases of a GPTModel's linear layers as one generation reads them.

    `linear(module, x)` is `module(x)` computed with those: `x` cast to their dtype, the result
    in it. `copied_bytes` is what the copies cost in memory (0 when every parameter served
    as it was).
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.float32, *, input_major: bool = True):
        self.dtype = dtype
        self._by_module: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._modules: list[nn.Module] = []  # kept alive while their ids are keys
        self.copied_bytes = 0
        for i, block in enumerate(model.trf_blocks):
            for name, module in block.named_modules():
                if isinstance(module, nn.Linear):
                    self._add(module, input_major and name in INPUT_MAJOR)
        self._add(model.out_head, input_major)

    def _add(self, module: nn.Linear, input_major: bool) -> None:
        weight = decode_layout(module.weight, self.dtype, input_major)
        bias = None if module.bias is None else module.bias.detach().to(self.dtype)
        for mine, theirs in ((weight, module.weight), (bias, module.bias)):
            if mine is not None and mine.data_ptr() != theirs.data_ptr():
                self.copied_bytes += mine.numel() * mine.element_size()
        self._by_module[id(module)] = (weight, bias)
        self._modules.append(module)

    def linear(self, module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self._by_module[id(module)]
        return F.linear(x.to(weight.dtype), weight, bias)
