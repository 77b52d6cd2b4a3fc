"""Generation's weights: each matrix a new token is multiplied by, in the layout and dtype that
one-row products read fastest.

Decoding multiplies one row per token by every matrix of the model, so it is bound by how fast
the matrices stream from memory and how well the kernel for one row uses them:

- float32 on a CPU: a one-row product `x @ W.T` reads an input-major matrix ([in, out] in
  memory, the parameter being its transposed view) markedly faster than nn.Linear's
  [out, in]; the GPT-2 cache stores its matrices that way for this reason (`gpt2/convert.py`,
  `Target.input_major`). `INPUT_MAJOR` says which: the attention's query, key, value and output
  projections, the feed-forward's first layer and the output head (the feed-forward's second
  layer reads as fast as it is). Training keeps nn.Linear's layout, whose products it runs
  faster (the same numbers bit for bit either way, measured on this project's CPUs).
- bfloat16: half the bytes, in nn.Linear's [out, in] layout, one row multiplied by the
  AVX512_BF16 kernel of `bf16_matvec` where the CPU has it (torch's own one-row bfloat16
  products run no faster than float32's), else by `torch.mv`. The residual stream, the layer
  norms and the logits handed to sampling stay float32, the mixed precision of training; the
  KV cache is bfloat16.

A parameter already in the wanted layout and dtype (GPT-2 read from its cache, in float32) is
used as it is; any other is copied. `decode_weights(model, dtype)` keeps the copies on the
model for the next generation while its parameters are unchanged, and makes them again after
anything wrote to them: an optimizer step (any torch.optim optimizer: a step hook notes which
parameters it updated, since fused AdamW leaves their version counters alone), a state dict
loaded, a parameter replaced or edited in place. The training path never sees these copies.
`decode_copy_bytes(model, dtype)` says what those copies will cost before any is made (a server
reserves the memory first), `kept_decode_weights(model)` which are kept now.
"""
from __future__ import annotations

import itertools
import threading
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from . import bf16_matvec

# Per block, the modules whose weight decoding reads input-major; the output head too.
INPUT_MAJOR = ("att.W_query", "att.W_key", "att.W_value", "att.out_proj", "ff.layers.0")


def is_input_major(weight: torch.Tensor) -> bool:
    """Whether an [out, in] weight is the transposed view of an [in, out] matrix in memory."""
    return weight.dim() == 2 and weight.t().is_contiguous() and not weight.is_contiguous()


def served_as_is(weight: torch.Tensor, dtype: torch.dtype, input_major: bool) -> bool:
    """Whether decoding reads `weight` itself: already in `dtype` and, when asked, input-major."""
    return weight.dtype == dtype and (not input_major or is_input_major(weight))


def decode_layout(weight: torch.Tensor, dtype: torch.dtype, input_major: bool) -> torch.Tensor:
    """`weight` ([out, in], as nn.Linear holds it) in `dtype`, input-major in memory when asked:
    the parameter itself when it already is, else a copy."""
    weight = weight.detach()
    if served_as_is(weight, dtype, input_major):
        return weight
    if not input_major:
        return weight.to(dtype).contiguous()
    return weight.t().to(dtype).contiguous().t()  # same values, stored [in, out]


def _decoded_linears(model: nn.Module, input_major: bool) -> Iterator[tuple[nn.Linear, bool]]:
    """Each linear layer a generation multiplies by, and whether decoding reads it input-major."""
    for block in model.trf_blocks:
        for name, module in block.named_modules():
            if isinstance(module, nn.Linear):
                yield module, input_major and name in INPUT_MAJOR
    yield model.out_head, input_major


class DecodeWeights:
    """The weights and biases of a GPTModel's linear layers as one generation reads them.

    `linear(module, x)` is `module(x)` computed with those: `x` cast to their dtype, the result
    in it. `copied_bytes` is what the copies cost in memory (0 when every parameter served
    as it was).
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.float32, *, input_major: bool | None = None):
        input_major = dtype == torch.float32 if input_major is None else input_major
        self.dtype = dtype
        self.fingerprint: tuple = ()  # of the parameters it was made from (decode_weights)
        self._by_module: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._modules: list[nn.Module] = []  # kept alive while their ids are keys
        self.copied_bytes = 0
        for module, module_input_major in _decoded_linears(model, input_major):
            self._add(module, module_input_major)

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
        x = x.to(weight.dtype)
        if weight.dtype == torch.bfloat16 and x.numel() == x.shape[-1]:  # one row: a matrix-vector product
            flat = x.reshape(-1).contiguous()
            row = bf16_matvec.matvec(weight, flat, bias)
            if row is None:  # no AVX512_BF16 kernel here: torch's (no faster than float32 on a CPU)
                row = torch.mv(weight, flat) if bias is None else torch.addmv(bias, weight, flat)
            return row.view(*x.shape[:-1], weight.shape[0])
        return F.linear(x, weight, bias)


# --- which parameters an optimizer has written since the copies were made -------------------
_STEPS = itertools.count(1)
_WRITTEN = "_gpt_core_optimizer_step"  # an attribute on each parameter: the step that last wrote it
_HOOK_LOCK = threading.Lock()
_hooked = False


def _note_step(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    step = next(_STEPS)
    for group in optimizer.param_groups:
        for p in group["params"]:
            setattr(p, _WRITTEN, step)


def _watch_optimizers() -> None:
    global _hooked
    with _HOOK_LOCK:  # once per process, when the first copies are kept (not at import)
        if not _hooked:
            from torch.optim.optimizer import register_optimizer_step_post_hook
            register_optimizer_step_post_hook(_note_step)
            _hooked = True


def _fingerprint(model: nn.Module) -> tuple:
    return tuple((p.data_ptr(), p._version, getattr(p, _WRITTEN, 0)) for p in model.parameters())


def decode_weights(model: nn.Module, dtype: torch.dtype) -> DecodeWeights:
    """The model's decoding weights in `dtype`: those kept from its last generation while its
    parameters are unchanged, else made now (and kept in their place)."""
    _watch_optimizers()
    fingerprint = (dtype, _fingerprint(model))
    kept = kept_decode_weights(model)
    if kept is not None and kept.fingerprint == fingerprint:
        return kept
    model.__dict__["_decode_weights"] = None  # the stale copies go before new ones are made
    weights = DecodeWeights(model, dtype, input_major=_reads_input_major(model, dtype))
    weights.fingerprint = fingerprint
    model.__dict__["_decode_weights"] = weights
    return weights


def _reads_input_major(model: nn.Module, dtype: torch.dtype) -> bool:
    # Input-major helps a CPU's one-row float32 products; a GPU reads either layout alike.
    return next(model.parameters()).device.type == "cpu" and dtype == torch.float32


def decode_copy_bytes(model: nn.Module, dtype: torch.dtype) -> int:
    """What `decode_weights(model, dtype)` holds in copies (its `copied_bytes`), from the
    parameters' shapes, dtypes and layouts alone: nothing is copied. 0 for a model generation
    calls as it is (no KV cache of its own: the bigram, the book's)."""
    if not hasattr(model, "new_kv_cache"):
        return 0
    total = 0
    for module, input_major in _decoded_linears(model, _reads_input_major(model, dtype)):
        if not served_as_is(module.weight, dtype, input_major):
            total += module.weight.numel() * dtype.itemsize
        if module.bias is not None and module.bias.dtype != dtype:
            total += module.bias.numel() * dtype.itemsize
    return total


def kept_decode_weights(model: nn.Module) -> DecodeWeights | None:
    """The copies kept on `model` from its last generation (current or stale), or None."""
    return model.__dict__.get("_decode_weights")


def release_decode_weights(model: nn.Module) -> None:
    """Drop the copies kept on `model` (its memory comes back; the next generation makes them)."""
    model.__dict__.pop("_decode_weights", None)
