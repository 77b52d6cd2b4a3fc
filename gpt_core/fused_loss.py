"""The fused output head + cross-entropy underneath `losses.calc_loss_batch`.

`F.cross_entropy(model(x).flatten(0, 1), y.flatten())` holds the (B*T, vocab) logits, their
log-softmax and its gradient whole: for the book's batch of 2 x 256 tokens and GPT-2's
50,257 tokens that is 100 MB each, and moving them through memory is much of a CPU training
step. `model_loss` gives the same number and gradients from the model's `hidden_states` and
its bias-free `out_head`, computed in slices of tokens; `applies` says when that is worth it.

Under bfloat16 autocast (a "bfloat16" run, precision.py) the products run in bfloat16 while
the sums, the log-sum-exp, the loss, the target's own gradient entry and the weight gradient
stay float32: the mixed precision of the rest of the model. There the products are fast enough that
passes over the float32 logits would dominate, so the vocabulary is walked in blocks that stay
in cache: one walk for an online log-sum-exp that keeps each block's bfloat16 softmax
numerators, a second that rescales them into the block's gradients (_MixedSlice). Each block
of the weight is cast to bfloat16 where it is used, so no copy of the head is held, and the
kept numerators take half the float32 path's logits. A float32 run
takes exactly the float32 operations it always did.
"""
from __future__ import annotations

import math

import torch

from .precision import autocast_dtype

# Tokens per slice of the fused head + loss. The slice's logits are held vocabulary-major,
# (vocab, C): for the book's batch of 2 x 256 that is one slice of 103 MB.
FUSED_CHUNK_TOKENS = 512
# Below this many logits (64 MB in float32) the plain head + F.cross_entropy is as fast or
# faster (measured: the demo preset's 128 x 50257 logits train faster unfused), so the fused
# path is kept for the large shapes where holding whole logits costs time and memory.
FUSED_MIN_LOGITS = 16_000_000
# Logits per vocabulary block of the bfloat16 path: 1M float32 (4 MB) stay in a core's caches.
MIXED_BLOCK_LOGITS = 1 << 20


def applies(model: torch.nn.Module, target_batch: torch.Tensor) -> bool:
    """Whether `model_loss` computes this batch's loss: a model with a separate
    `hidden_states` and a bias-free linear `out_head` (our GPTModel), logits large enough to
    gain, gradients on (a float32 evaluation keeps the book's plain path; a bfloat16 one gains
    too), and no -100 padding targets (the book's chapter 7 ignores those; the plain path
    handles them). On a CPU only: the slices save a CPU's memory traffic,
    while a GPU runs the plain head + cross-entropy as a few large kernels (which compile)."""
    head = getattr(model, "out_head", None)
    return (target_batch.device.type == "cpu" and hasattr(model, "hidden_states")
            and isinstance(head, torch.nn.Linear) and head.bias is None
            and (torch.is_grad_enabled() or autocast_dtype("cpu") is not None)
            and target_batch.numel() * head.out_features >= FUSED_MIN_LOGITS
            and bool((target_batch >= 0).all()))


def model_loss(model: torch.nn.Module, input_batch: torch.Tensor, target_batch: torch.Tensor, *,
               label_smoothing: float = 0.0) -> torch.Tensor:
    """`F.cross_entropy(model(input_batch).flatten(0, 1), target_batch.flatten())`, the head fused."""
    hidden = model.hidden_states(input_batch).flatten(0, 1)  # (B*T, d)
    return fused_linear_cross_entropy(hidden, model.out_head.weight, target_batch.flatten(),
                                      label_smoothing=label_smoothing)


def _chunk_losses(logits_t: torch.Tensor, targets: torch.Tensor, label_smoothing: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token cross-entropy of a vocabulary-major (V, C) slice of logits, in as few passes
    over the slice as possible: it is 100 MB for the book's batch, and each pass costs as much
    as a small matmul. Overwrites `logits_t` with exp(logit - max) (the softmax numerators a
    gradient needs) and returns (loss, that tensor, its column sums)."""
    cols = torch.arange(targets.shape[0], device=targets.device)
    target_logit = logits_t[targets, cols]
    mean_logit = logits_t.mean(dim=0) if label_smoothing else None
    peak = logits_t.amax(dim=0)  # (C,)
    exp_t = logits_t.sub_(peak).exp_()
    sum_exp = exp_t.sum(dim=0)
    lse = peak + sum_exp.log()
    loss = lse - target_logit
    if label_smoothing:
        # PyTorch's definition: (1-eps) * NLL + eps * mean over classes of -log p.
        loss = (1 - label_smoothing) * loss + label_smoothing * (lse - mean_logit)
    return loss, exp_t, sum_exp


def _vocab_blocks(vocab: int, tokens: int):
    rows = max(64, MIXED_BLOCK_LOGITS // max(1, tokens))
    return [(v0, min(v0 + rows, vocab)) for v0 in range(0, vocab, rows)]


class _MixedSlice:
    """One slice's head + loss in bfloat16, walking the vocabulary in blocks that stay in cache.

    The loss walk writes each block's bfloat16 logits into `numerators` (V, C) and turns them,
    in place, into exp(logit - peak), the peak being the log-sum-exp's running maximum after
    that block (kept in `peaks`). Those are the softmax's numerators to within a per-token
    scale that the finished log-sum-exp fixes, so the gradient walk only rescales them: no
    logits recomputed, no float32 copy of a block, one exp per logit. Held as bfloat16 they
    take half the memory of the float32 path's (V, C) logits. An evaluation (no gradient) keeps
    one block's worth instead.

    The products' rounding is bfloat16's whatever happens after them, so the subtraction and
    the exp run in bfloat16 too (twice as fast as float32 here); the sums, the log-sum-exp,
    the loss and the target's own probability (the one gradient entry near 1) are float32.
    """

    def __init__(self, weight: torch.Tensor, h: torch.Tensor, numerators: torch.Tensor | None):
        self.weight, self.h, self.numerators = weight, h, numerators
        self.blocks = _vocab_blocks(weight.shape[0], h.shape[0])
        rows = max(v1 - v0 for v0, v1 in self.blocks)
        self._w = torch.empty(rows, weight.shape[1], dtype=h.dtype, device=h.device)
        self._scratch = None if numerators is not None else torch.empty(rows, h.shape[0], dtype=h.dtype,
                                                                           device=h.device)
        self.peaks: list[torch.Tensor] = []

    def weight_block(self, v0: int, v1: int) -> torch.Tensor:
        """The weight's rows v0:v1 in bfloat16, cast where used: no copy of the whole head."""
        return self._w[:v1 - v0].copy_(self.weight[v0:v1])

    def losses(self, targets: torch.Tensor, label_smoothing: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(per-token loss, log-sum-exp, target logit), float32: an online log-sum-exp over the blocks."""
        vocab, tokens, device = self.weight.shape[0], self.h.shape[0], self.h.device
        ht = self.h.t()
        peak = torch.full((tokens,), -torch.inf, device=device)
        sum_exp = torch.zeros(tokens, device=device)
        target_logit = torch.zeros(tokens, device=device)
        logit_sum = torch.zeros(tokens, device=device) if label_smoothing else None
        for v0, v1 in self.blocks:
            dest = self.numerators[v0:v1] if self.numerators is not None else self._scratch[:v1 - v0]
            block = torch.mm(self.weight_block(v0, v1), ht, out=dest)  # (R, C) bfloat16 logits
            rows = targets - v0
            inside = (rows >= 0) & (rows < v1 - v0)
            picked = block.gather(0, rows.clamp(0, v1 - v0 - 1).unsqueeze(0)).squeeze(0).float()
            target_logit = torch.where(inside, picked, target_logit)
            if logit_sum is not None:
                logit_sum += block.sum(dim=0, dtype=torch.float32)
            # A maximum of bfloat16 values is one itself: subtracting it in bfloat16 is exact at the top.
            new_peak = torch.maximum(peak, block.amax(dim=0).float())
            numer = block.sub_(new_peak.to(block.dtype)).exp_()
            sum_exp.mul_((peak - new_peak).exp_()).add_(numer.sum(dim=0, dtype=torch.float32))
            peak = new_peak
            self.peaks.append(new_peak)
        lse = peak + sum_exp.log()
        loss = lse - target_logit
        if label_smoothing:  # PyTorch's definition, as in _chunk_losses
            loss = (1 - label_smoothing) * loss + label_smoothing * (lse - logit_sum / vocab)
        return loss, lse, target_logit

    def grads(self, targets: torch.Tensor, lse: torch.Tensor, target_logit: torch.Tensor, label_smoothing: float,
              n: int, grad_weight: torch.Tensor, accumulate: bool) -> torch.Tensor:
        """The slice's gradients from the kept numerators: d loss_mean / d logits = (softmax -
        (1-eps) * onehot - eps / V) / n, block by block, then its two products in bfloat16.
        Writes (or adds) the blocks' rows of `grad_weight` (V, d) and returns the gradient of
        `h`, (C, d), both float32."""
        vocab, tokens = self.weight.shape[0], self.h.shape[0]
        grad_h = torch.zeros(tokens, self.weight.shape[1], device=self.h.device)
        uniform = label_smoothing / (vocab * n)  # the smoothing's share of every entry
        # The target's entry, p - (1 - eps), from the float32 logit: near 1, bfloat16's p would lose it.
        at_target = ((target_logit - lse).exp_() - (1 - label_smoothing)).div_(n) - uniform
        log_n = math.log(n)
        for (v0, v1), peak in zip(self.blocks, self.peaks):
            g = self.numerators[v0:v1].mul_((peak - lse - log_n).exp_().to(self.h.dtype))  # softmax / n
            if label_smoothing:
                g.sub_(uniform)
            cols = ((targets >= v0) & (targets < v1)).nonzero().squeeze(1)  # tokens whose target is here
            if cols.numel():
                g.index_put_((targets[cols] - v0, cols), at_target[cols].to(g.dtype))
            w = self.weight_block(v0, v1)
            grad_h += g.t() @ w  # (C, d)
            if accumulate:
                grad_weight[v0:v1] += g @ self.h  # (R, d)
            else:
                grad_weight[v0:v1] = g @ self.h
        return grad_h


class _FusedLinearCrossEntropy(torch.autograd.Function):
    """mean_i CE(hidden_i @ weight.T, target_i), gradients computed slice by slice in forward.

    Computing the gradient while the slice's logits are at hand avoids keeping them for
    backward; backward then only scales the saved gradients by the incoming grad.

    The logits are computed transposed, `weight @ h.T` (V, C), not `h @ weight.T` (C, V):
    the same products, but MKL runs the tall shape about 1.4x faster than the wide one
    (measured for the 50257 x 768 head on 2 cores: 150 vs 105 GFLOP/s), and the head is a
    third of a GPT-2 training step's arithmetic.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, label_smoothing, chunk_tokens, compute_dtype):
        n, vocab = hidden.shape[0], weight.shape[0]
        grad_hidden = torch.empty_like(hidden)
        grad_weight = None
        total = hidden.new_zeros((), dtype=torch.float32)
        mixed = compute_dtype != torch.float32
        h_all = hidden.to(compute_dtype) if mixed else hidden  # the products' copy of the activations
        numerators = None
        for start in range(0, n, chunk_tokens):
            h = h_all[start:start + chunk_tokens]  # (C, d)
            t = targets[start:start + chunk_tokens]
            if mixed:  # bfloat16 products; the gradients summed in float32
                if numerators is None:  # one buffer for every slice's (V, C) numerators
                    numerators = torch.empty(vocab * h.shape[0], dtype=compute_dtype, device=h.device)
                part = _MixedSlice(weight, h, numerators[:vocab * h.shape[0]].view(vocab, h.shape[0]))
                loss, lse, target_logit = part.losses(t, label_smoothing)
                total += loss.sum()
                first = grad_weight is None
                if first:
                    grad_weight = torch.empty_like(weight)
                grad_hidden[start:start + chunk_tokens] = part.grads(t, lse, target_logit, label_smoothing, n,
                                                                     grad_weight, accumulate=not first)
                continue
            logits_t = weight @ h.t()  # (V, C)
            loss, exp_t, sum_exp = _chunk_losses(logits_t, t, label_smoothing)
            total += loss.sum()
            # d loss_mean / d logits = (softmax - (1-eps) * onehot - eps / V) / n.
            grad_t = exp_t.mul_((sum_exp * n).reciprocal_())
            cols = torch.arange(t.shape[0], device=t.device)
            grad_t.index_put_((t, cols), grad_t.new_full((t.shape[0],), (label_smoothing - 1) / n), accumulate=True)
            if label_smoothing:
                grad_t.sub_(label_smoothing / (vocab * n))
            torch.mm(grad_t.t(), weight, out=grad_hidden[start:start + chunk_tokens])  # (C, d)
            if grad_weight is None:
                grad_weight = grad_t @ h  # (V, d)
            else:
                grad_weight.addmm_(grad_t, h)
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return (total / n).to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        grad_hidden, grad_weight = ctx.saved_tensors
        if grad_output.item() != 1.0:  # a scaled loss (gradient accumulation, DDP)
            grad_hidden, grad_weight = grad_hidden * grad_output, grad_weight * grad_output
        return grad_hidden, grad_weight, None, None, None, None


def fused_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                               label_smoothing: float = 0.0,
                               chunk_tokens: int = FUSED_CHUNK_TOKENS) -> torch.Tensor:
    """`F.cross_entropy(hidden @ weight.T, targets)` without materialising all the logits.

    hidden (N, d), weight (V, d), targets (N,). With gradients off (evaluation) only the
    loss is computed, slice by slice. Under autocast the products take autocast's dtype and
    the rest stays float32 (module docstring); the loss is float32 either way.
    """
    if hidden.shape[0] == 0:
        raise ValueError("cannot compute a loss over zero tokens")
    compute_dtype = autocast_dtype(hidden.device.type) or weight.dtype
    # Autocast off inside: each operation below takes the dtype chosen here.
    with torch.autocast(device_type=hidden.device.type, enabled=False):
        if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
            return _FusedLinearCrossEntropy.apply(hidden, weight, targets, label_smoothing, chunk_tokens,
                                                  compute_dtype)
        h_all = hidden.to(compute_dtype)
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, hidden.shape[0], chunk_tokens):
            h, t = h_all[start:start + chunk_tokens], targets[start:start + chunk_tokens]
            if compute_dtype != torch.float32:
                total += _MixedSlice(weight, h, None).losses(t, label_smoothing)[0].sum()
            else:
                total += _chunk_losses(weight @ h.t(), t, label_smoothing)[0].sum()  # (V, C) logits
        return (total / hidden.shape[0]).to(hidden.dtype)
