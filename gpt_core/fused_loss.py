"""The fused output head + cross-entropy underneath `losses.calc_loss_batch`.

`F.cross_entropy(model(x).flatten(0, 1), y.flatten())` holds the (B*T, vocab) logits, their
log-softmax and its gradient whole: for the book's batch of 2 x 256 tokens and GPT-2's
50,257 tokens that is 100 MB each, and moving them through memory is much of a CPU training
step. `model_loss` gives the same number and gradients from the model's `hidden_states` and
its bias-free `out_head`, computed in slices of tokens; `applies` says when that is worth it.

Under bfloat16 autocast (a "bfloat16" run, precision.py) the products run in bfloat16 while
the log-sum-exp, the softmax that makes the gradient, the loss and the weight gradient stay
float32: the mixed precision of the rest of the model. There the products are fast enough that
passes over the float32 logits would dominate, so the vocabulary is walked in blocks that stay
in cache: one walk for an online log-sum-exp, a second that recomputes each block's logits and
turns them into its gradients (a third more head products, far fewer bytes moved). Each block
of the weight is cast to bfloat16 where it is used, so no copy of the head or of the logits is
held: the bfloat16 head needs less memory than the float32 one. A float32 run
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


class _BlockBuffers:
    """One walk's working memory, allocated once and reused by every vocabulary block: the
    weight block in bfloat16, its product and that product in float32. A new tensor per block
    asks the allocator for a few MB some fifty times a step, which a server that returns freed
    memory at once (glibc's mmap threshold fixed at 4 MB) pays in page faults: ~45% more CPU
    on the demo preset."""

    def __init__(self, blocks, weight: torch.Tensor, h: torch.Tensor):
        rows = max(v1 - v0 for v0, v1 in blocks)
        self.w = torch.empty(rows, weight.shape[1], dtype=h.dtype, device=h.device)
        self.product = torch.empty(rows, h.shape[0], dtype=h.dtype, device=h.device)
        self.logits = torch.empty(rows, h.shape[0], dtype=torch.float32, device=h.device)

    def logits_of(self, weight: torch.Tensor, ht: torch.Tensor, v0: int, v1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the block's weight in bfloat16, its logits `w @ ht` in float32), views of the buffers."""
        w, product, logits = self.w[:v1 - v0], self.product[:v1 - v0], self.logits[:v1 - v0]
        w.copy_(weight[v0:v1])
        torch.mm(w, ht, out=product)
        return w, logits.copy_(product)


def _mixed_losses(weight: torch.Tensor, h: torch.Tensor, targets: torch.Tensor, label_smoothing: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-token loss, log-sum-exp), float32, of the logits `weight @ h.T` with weight (V, d)
    float32 and h (C, d) bfloat16: each vocabulary block of the weight cast and multiplied in
    bfloat16, an online log-sum-exp over the blocks; no (V, C) or (V, d) copy is held."""
    vocab, tokens = weight.shape[0], h.shape[0]
    ht = h.t()
    peak = torch.full((tokens,), -torch.inf, device=h.device)
    sum_exp = torch.zeros(tokens, device=h.device)
    target_logit = torch.zeros(tokens, device=h.device)
    logit_sum = torch.zeros(tokens, device=h.device) if label_smoothing else None
    blocks = _vocab_blocks(vocab, tokens)
    buffers = _BlockBuffers(blocks, weight, h)
    for v0, v1 in blocks:
        block = buffers.logits_of(weight, ht, v0, v1)[1]  # (R, C)
        rows = targets - v0
        inside = (rows >= 0) & (rows < v1 - v0)
        picked = block.gather(0, rows.clamp(0, v1 - v0 - 1).unsqueeze(0)).squeeze(0)
        target_logit = torch.where(inside, picked, target_logit)
        if logit_sum is not None:
            logit_sum += block.sum(dim=0)
        new_peak = torch.maximum(peak, block.amax(dim=0))
        sum_exp.mul_((peak - new_peak).exp_()).add_(block.sub_(new_peak).exp_().sum(dim=0))
        peak = new_peak
    lse = peak + sum_exp.log()
    loss = lse - target_logit
    if label_smoothing:  # PyTorch's definition, as in _chunk_losses
        loss = (1 - label_smoothing) * loss + label_smoothing * (lse - logit_sum / vocab)
    return loss, lse


def _mixed_grads(weight: torch.Tensor, h: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor,
                 label_smoothing: float, n: int, grad_weight: torch.Tensor, accumulate: bool) -> torch.Tensor:
    """The slice's gradients, block by block: d loss_mean / d logits (softmax - (1-eps) *
    onehot - eps / V) formed in float32 from each block's recomputed logits, then its two
    products in bfloat16. Writes (or adds) the blocks' rows of `grad_weight` (V, d) and
    returns the gradient of `h`, (C, d), both float32."""
    vocab, tokens = weight.shape[0], h.shape[0]
    ht = h.t()
    shift = lse + math.log(n)  # exp(logit - lse - log n) = softmax / n, in one pass fewer
    grad_h = torch.zeros(tokens, weight.shape[1], device=h.device)
    blocks = _vocab_blocks(vocab, tokens)
    buffers = _BlockBuffers(blocks, weight, h)
    for v0, v1 in blocks:
        w, g = buffers.logits_of(weight, ht, v0, v1)  # (R, d) bfloat16, (R, C) float32
        g = g.sub_(shift).exp_()  # softmax / n
        cols = ((targets >= v0) & (targets < v1)).nonzero().squeeze(1)  # tokens whose target is here
        if cols.numel():
            g.index_put_((targets[cols] - v0, cols), g.new_full((cols.numel(),), (label_smoothing - 1) / n),
                         accumulate=True)
        if label_smoothing:
            g.sub_(label_smoothing / (vocab * n))
        g = buffers.product[:v1 - v0].copy_(g)  # in bfloat16, where its logits were
        grad_h += g.t() @ w  # (C, d)
        if accumulate:
            grad_weight[v0:v1] += g @ h  # (R, d)
        else:
            grad_weight[v0:v1] = g @ h
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
        for start in range(0, n, chunk_tokens):
            h = h_all[start:start + chunk_tokens]  # (C, d)
            t = targets[start:start + chunk_tokens]
            if mixed:  # bfloat16 products; the gradients summed in float32
                loss, lse = _mixed_losses(weight, h, t, label_smoothing)
                total += loss.sum()
                first = grad_weight is None
                if first:
                    grad_weight = torch.empty_like(weight)
                grad_hidden[start:start + chunk_tokens] = _mixed_grads(weight, h, t, lse, label_smoothing, n,
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
                total += _mixed_losses(weight, h, t, label_smoothing)[0].sum()
            else:
                total += _chunk_losses(weight @ h.t(), t, label_smoothing)[0].sum()  # (V, C) logits
        return (total / hidden.shape[0]).to(hidden.dtype)
