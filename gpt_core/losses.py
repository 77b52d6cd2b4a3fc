"""The book's losses: per batch, averaged over a loader, and perplexity."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


# Tokens per slice of the fused head + loss. The slice's logits are held vocabulary-major,
# (vocab, C): for the book's batch of 2 x 256 that is one slice of 103 MB.
FUSED_CHUNK_TOKENS = 512
# Below this many logits (64 MB in float32) the plain head + F.cross_entropy is as fast or
# faster (measured: the demo preset's 128 x 50257 logits train faster unfused), so the fused
# path is kept for the large shapes where holding whole logits costs time and memory.
FUSED_MIN_LOGITS = 16_000_000


def calc_loss_batch(input_batch: torch.Tensor, target_batch: torch.Tensor, model: torch.nn.Module,
                    device: torch.device | str, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of the next token over a (B, T) batch.

    The same number (and gradients) as the book's
    `F.cross_entropy(model(x).flatten(0, 1), y.flatten())`. For a model with a separate
    `hidden_states` and `out_head` (our GPTModel) the output head and the loss are fused and
    computed in slices of tokens, so the (B*T, vocab) logits, their log-softmax and its
    gradient are never held whole: less memory and less memory traffic, which on a CPU is
    much of a training step.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    head = getattr(model, "out_head", None)
    fusable = (hasattr(model, "hidden_states") and isinstance(head, torch.nn.Linear)
               and head.bias is None and torch.is_grad_enabled()
               and target_batch.numel() * head.out_features >= FUSED_MIN_LOGITS
               # -100 marks padding the book's chapter 7 ignores; the plain path handles it.
               and bool((target_batch >= 0).all()))
    if fusable:
        hidden = model.hidden_states(input_batch).flatten(0, 1)  # (B*T, d)
        return fused_linear_cross_entropy(hidden, head.weight, target_batch.flatten(),
                                          label_smoothing=label_smoothing)
    logits = model(input_batch)  # (B, T, vocab)
    return F.cross_entropy(logits.flatten(0, 1), target_batch.flatten(), label_smoothing=label_smoothing)


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
    def forward(ctx, hidden, weight, targets, label_smoothing, chunk_tokens):
        n, vocab = hidden.shape[0], weight.shape[0]
        grad_hidden = torch.empty_like(hidden)
        grad_weight = None
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, n, chunk_tokens):
            h = hidden[start:start + chunk_tokens]  # (C, d)
            t = targets[start:start + chunk_tokens]
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
        ctx.save_for_backward(grad_hidden, grad_weight)
        return (total / n).to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        grad_hidden, grad_weight = ctx.saved_tensors
        if grad_output.item() != 1.0:  # a scaled loss (gradient accumulation, DDP)
            grad_hidden, grad_weight = grad_hidden * grad_output, grad_weight * grad_output
        return grad_hidden, grad_weight, None, None, None


def fused_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, *,
                               label_smoothing: float = 0.0,
                               chunk_tokens: int = FUSED_CHUNK_TOKENS) -> torch.Tensor:
    """`F.cross_entropy(hidden @ weight.T, targets)` without materialising all the logits.

    hidden (N, d), weight (V, d), targets (N,). With gradients off (evaluation) only the
    loss is computed, slice by slice.
    """
    if hidden.shape[0] == 0:
        raise ValueError("cannot compute a loss over zero tokens")
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        return _FusedLinearCrossEntropy.apply(hidden, weight, targets, label_smoothing, chunk_tokens)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[0], chunk_tokens):
        logits_t = weight @ hidden[start:start + chunk_tokens].t()  # (V, C)
        total += _chunk_losses(logits_t, targets[start:start + chunk_tokens], label_smoothing)[0].sum()
    return (total / hidden.shape[0]).to(hidden.dtype)


@torch.no_grad()
def calc_loss_loader(data_loader, model: torch.nn.Module, device: torch.device | str,
                     num_batches: int | None = None) -> float:
    """Mean of the first `num_batches` batch losses; NaN for an empty loader, as the book.

    Runs in whatever mode the caller left the model in (the book's `evaluate_model` sets eval).
    """
    if len(data_loader) == 0:
        return float("nan")
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    if num_batches <= 0:
        return float("nan")
    total_loss = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= num_batches:
            break
        total_loss += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total_loss / num_batches


def perplexity(loss: float | torch.Tensor) -> float:
    """exp(loss): the effective number of tokens the model hesitates between."""
    loss = float(loss)
    if math.isnan(loss):
        return float("nan")
    return math.exp(loss) if loss < 700 else float("inf")
