"""Choosing the next token from logits: small pure functions, plus the book's sampling lab.

The order is the book's (`llms_from_scratch.ch05.generate`): the top-k filter, then the
temperature, then (our addition, as litgpt does) the top-p filter, then a multinomial draw;
temperature 0 means greedy argmax. Each filter takes logits and returns logits, with the
tokens it removes set to -inf, so the functions compose and a chart can show every stage.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

# --- validation ---------------------------------------------------------------------------


def check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(
            f"temperature must be a finite number >= 0 (0 means always the most likely token), "
            f"got {temperature!r}"
        )
    return float(temperature)


def check_top_k(top_k: int | None) -> int | None:
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a whole number >= 1 (or None to keep every token), got {top_k!r}")
    return top_k


def check_top_p(top_p: float | None) -> float | None:
    if top_p is None:
        return None
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) \
            or not math.isfinite(top_p) or not 0 < top_p <= 1:
        raise ValueError(
            f"top_p must be in (0, 1] (1 keeps every token), got {top_p!r}"
        )
    return float(top_p)


def check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() not in (1, 2):
        raise ValueError("logits must be a floating-point tensor of shape (vocab,) or (batch, vocab)")
    if logits.shape[-1] == 0:
        raise ValueError("logits must cover at least one token")


# --- filters (logits -> logits) -------------------------------------------------------------


def top_k_filter(logits: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """Set every logit below the k-th largest to -inf (ties with the k-th are kept, as in
    the book). `top_k` larger than the vocabulary keeps everything."""
    top_k = check_top_k(top_k)
    if top_k is None or top_k >= logits.shape[-1]:
        return logits
    top_logits, _ = torch.topk(logits, top_k, dim=-1)
    min_val = top_logits[..., -1:]  # keepdim: the book's `[:, -1]` only broadcasts for batch 1
    return torch.where(logits < min_val, torch.tensor(float("-inf"), device=logits.device), logits)


def top_p_filter(logits: torch.Tensor, top_p: float | None) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probabilities add up
    to at least `top_p`; the rest become -inf. The most likely token always stays.

    A token is kept when the tokens more likely than it hold less than `top_p` (the usual
    definition, as in transformers' TopPLogitsWarper). Instead of sorting the whole vocabulary
    every step, the candidates come from `topk` with k grown until they cover `top_p`: a
    trained model's nucleus is usually a few hundred tokens out of 50,257.
    """
    top_p = check_top_p(top_p)
    if top_p is None or top_p >= 1.0:
        return logits
    probs = torch.softmax(logits, dim=-1)
    vocab = logits.shape[-1]
    k = min(vocab, 128)
    while True:
        if k * 4 > vocab:  # a wide nucleus: sorting everything is cheaper than a large topk
            top_probs, top_idx = torch.sort(probs, dim=-1, descending=True)
        else:
            top_probs, top_idx = torch.topk(probs, k, dim=-1)  # (..., k), most likely first
        cum_probs = top_probs.cumsum(dim=-1)
        if k * 4 > vocab or bool((cum_probs[..., -1] >= top_p).all()):
            break
        k *= 8
    mass_before = cum_probs - top_probs  # what the more likely tokens already hold
    keep_sorted = mass_before < top_p
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, top_idx, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def sample_next_token(logits: torch.Tensor, *, temperature: float = 0.0, top_k: int | None = None,
                      top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, vocab) logits -> (B, 1) token ids, exactly as the book's `generate` picks them.

    With no `generator` the draw uses PyTorch's global RNG, like the book, so the same
    `torch.manual_seed` gives the same tokens.
    """
    temperature = check_temperature(temperature)
    logits = top_k_filter(logits, top_k)
    if temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    logits = top_p_filter(logits / temperature, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


# --- every stage at once, for the "next token" chart -----------------------------------------

STAGES = ("softmax", "top_k", "temperature", "top_p")


def filter_stages(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> dict[str, torch.Tensor]:
    """Probabilities after each step of the pipeline, for 1-D logits:

    "softmax" the raw distribution; "top_k" after the top-k filter (temperature 1);
    "temperature" after dividing by the temperature as well; "top_p" after the nucleus
    filter too -- the distribution the token is actually drawn from. With temperature 0 the
    last two are one-hot on the most likely token, since generation is then greedy.
    """
    check_logits(logits)
    if logits.dim() != 1:
        raise ValueError("filter_stages takes the logits of one position, shape (vocab,)")
    temperature = check_temperature(temperature)
    logits = logits.float()
    stages = {"softmax": torch.softmax(logits, dim=-1)}
    filtered = top_k_filter(logits, top_k)
    stages["top_k"] = torch.softmax(filtered, dim=-1)
    if temperature == 0:
        greedy = torch.zeros_like(logits)
        greedy[torch.argmax(filtered)] = 1.0
        stages["temperature"] = greedy
        stages["top_p"] = greedy.clone()
        return stages
    scaled = filtered / temperature
    stages["temperature"] = torch.softmax(scaled, dim=-1)
    stages["top_p"] = torch.softmax(top_p_filter(scaled, top_p), dim=-1)
    return stages


@dataclass(frozen=True)
class Candidate:
    """One token's probability after each stage of `filter_stages`."""
    token_id: int
    label: str
    logit: float
    probs: dict[str, float]


@dataclass(frozen=True)
class Distribution:
    candidates: list[Candidate]  # the top_n tokens by logit, most likely first
    kept: dict[str, int]  # tokens with non-zero probability after each stage
    temperature: float
    top_k: int | None
    top_p: float | None

    def table(self) -> list[dict[str, object]]:
        """One row per candidate: token_id, label, logit and one column per stage."""
        return [{"token_id": c.token_id, "label": c.label, "logit": c.logit, **c.probs}
                for c in self.candidates]


def describe_distribution(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                          top_p: float | None = None, top_n: int = 10,
                          labels: Sequence[str] | None = None) -> Distribution:
    """The `top_n` most likely tokens of 1-D logits, with their probability at every stage.
    `labels` names tokens by id (defaults to the id as text)."""
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise ValueError(f"top_n must be a whole number >= 1, got {top_n!r}")
    stages = filter_stages(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    top_n = min(top_n, logits.shape[-1])
    order = torch.topk(logits.float(), top_n).indices.tolist()
    columns = {name: probs[order].tolist() for name, probs in stages.items()}
    logit_values = logits.float()[order].tolist()
    candidates = [
        Candidate(token_id=tid, label=labels[tid] if labels is not None else str(tid), logit=logit_values[j],
                  probs={name: columns[name][j] for name in STAGES})
        for j, tid in enumerate(order)
    ]
    kept = {name: int((probs > 0).sum()) for name, probs in stages.items()}
    return Distribution(candidates, kept, float(temperature), top_k, top_p)


# --- the book's sampling lab (chapter 5, "decoding strategies") ------------------------------

TOY_VOCAB: Mapping[str, int] = {
    "closer": 0, "every": 1, "effort": 2, "forward": 3, "inches": 4,
    "moves": 5, "pizza": 6, "toward": 7, "you": 8,
}
TOY_INVERSE_VOCAB: Mapping[int, str] = {i: w for w, i in TOY_VOCAB.items()}
# The logits the book's imaginary LLM gives after "every effort moves you".
TOY_LOGITS: tuple[float, ...] = (4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79)
TOY_TEMPERATURES: tuple[float, ...] = (1.0, 0.1, 5.0)


def toy_logits() -> torch.Tensor:
    return torch.tensor(TOY_LOGITS)


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The book's function: softmax of logits / temperature over a 1-D vocabulary."""
    temperature = check_temperature(temperature)
    if temperature == 0:
        raise ValueError("temperature must be > 0 here; 0 is greedy decoding (argmax)")
    scaled_logits = logits / temperature
    return torch.softmax(scaled_logits, dim=0)


def sample_counts(probas: torch.Tensor, num_samples: int = 1000, *, seed: int | None = 123,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """How often each token comes out of `num_samples` single draws, counted per token id.

    One `torch.multinomial` call per draw, as the book's `print_sampled_tokens` does, so a
    seed gives the book's counts; the seed goes to a private generator, leaving the global
    RNG alone. seed=None and no generator draws from the global RNG.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a whole number >= 1, got {num_samples!r}")
    if probas.dim() != 1 or not probas.is_floating_point():
        raise ValueError("probas must be a 1-D floating-point tensor of probabilities")
    if generator is not None and seed is not None:
        raise ValueError("give a seed or a generator, not both")
    if generator is None and seed is not None:
        generator = torch.Generator(device=probas.device).manual_seed(seed)
    draws = [torch.multinomial(probas, num_samples=1, generator=generator) for _ in range(num_samples)]
    return torch.bincount(torch.cat(draws), minlength=probas.shape[0])


@dataclass(frozen=True)
class TemperatureRun:
    temperature: float
    probs: list[float]  # per toy-vocabulary id
    counts: list[int]  # draws per toy-vocabulary id


def temperature_lab(temperatures: Sequence[float] = TOY_TEMPERATURES, *, logits: torch.Tensor | None = None,
                    num_samples: int = 1000, seed: int | None = 123) -> list[TemperatureRun]:
    """The book's experiment: for each temperature, the softmax of the toy logits and the
    counts of `num_samples` draws (each temperature reseeded, as the book reseeds)."""
    logits = toy_logits() if logits is None else logits
    runs = []
    for t in temperatures:
        probs = softmax_with_temperature(logits, t)
        counts = sample_counts(probs, num_samples, seed=seed)
        runs.append(TemperatureRun(float(t), probs.tolist(), counts.tolist()))
    return runs
