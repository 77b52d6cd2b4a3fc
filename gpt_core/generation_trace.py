"""Generation inspected token by token: what each generated token was drawn from.

A `GenerationTrace` is a `StepHook` (generate.py): passed as `on_step`, it sees the logits of
every step and the token drawn from them, and keeps, per token, its rank among all tokens,
its probability at each stage of the sampling pipeline (softmax, top-k, temperature, top-p:
`sampling.filter_stages`) and the few likeliest candidates at each stage. No extra forward:
the logits are generation's own, so the numbers are exactly those the token was drawn from.
Only the first row of a batch is traced.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .sampling import STAGES, check_temperature, check_top_k, check_top_p, filter_stages

TOP_CANDIDATES = 10


@dataclass(frozen=True)
class TracedToken:
    """One generated token and the distribution it was drawn from."""
    token_id: int
    label: str  # the token's own text
    rank: int  # 1 = the model's most likely token (by logit, so the same at every stage)
    probs: dict[str, float]  # its probability after each stage (sampling.STAGES)
    candidates: tuple[tuple[int, str, dict[str, float]], ...]  # (id, label, stage probs), likeliest first
    kept: dict[str, int]  # how many tokens each stage leaves with a non-zero probability
    vocab_size: int


class GenerationTrace:
    """Records each generated token (`record`, a StepHook) with its candidates."""

    def __init__(self, tokenizer: Any, *, temperature: float = 0.0, top_k: int | None = None,
                 top_p: float | None = None, top_n: int = TOP_CANDIDATES, prompt: str = ""):
        if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
            raise ValueError(f"top_n must be a whole number >= 1, got {top_n!r}")
        self.tokenizer = tokenizer
        self.temperature = check_temperature(temperature)
        self.top_k, self.top_p = check_top_k(top_k), check_top_p(top_p)
        self.top_n = top_n
        self.prompt = prompt
        self.tokens: list[TracedToken] = []

    def _labels(self, ids: list[int]) -> list[str]:
        if hasattr(self.tokenizer, "token_strings"):
            return self.tokenizer.token_strings(ids)
        return [self.tokenizer.decode([i]) for i in ids]

    def record(self, logits: torch.Tensor, next_ids: torch.Tensor) -> None:
        """The StepHook: logits (B, vocab) of this step and the ids (B, 1) drawn from them."""
        row = logits[0].float()
        chosen = int(next_ids[0, 0])
        stages = filter_stages(row, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
        order = torch.topk(row, min(self.top_n, row.shape[-1])).indices.tolist()
        table = torch.stack([stages[name] for name in STAGES])  # (stages, vocab)
        picked = table[:, order].T.tolist()  # (top_n, stages)
        labels = self._labels(order + [chosen])
        candidates = tuple((tid, labels[j], dict(zip(STAGES, picked[j]))) for j, tid in enumerate(order))
        self.tokens.append(TracedToken(
            token_id=chosen, label=labels[-1], rank=int((row > row[chosen]).sum()) + 1,
            probs=dict(zip(STAGES, table[:, chosen].tolist())), candidates=candidates,
            kept={name: int((stages[name] > 0).sum()) for name in STAGES}, vocab_size=row.shape[-1]))

    __call__ = record

    @property
    def settings(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}
