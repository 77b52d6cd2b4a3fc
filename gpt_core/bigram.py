"""The BabyGPT notebook's baseline: a bigram model, a lookup table of next-token logits.

Row `i` of an embedding of size vocab x vocab holds the logits of the token that follows
token `i`: no context beyond the current token, no attention. Trained and sampled through
the same paths as `GPTModel` (`forward(idx) -> (B, T, vocab)` logits, `calc_loss_batch`,
`generate`), it shows how much attention buys over a lookup table on the same corpus.

The model carries a `cfg` (`BigramConfig`) like `GPTModel` does, so checkpoints describe
it and `model.build_model(model.config_from_dict(d))` rebuilds it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

BIGRAM = "bigram"


@dataclass(frozen=True)
class BigramConfig:
    """vocab_size decides the table; context_length only bounds the windows it is shown
    (a bigram reads one token, so any length works) and is what `generate` crops to."""
    vocab_size: int
    context_length: int = 64
    # For code that reads a GPTConfig's fields (the trainer's dropout override, summaries).
    drop_rate: float = 0.0
    model_type: str = BIGRAM

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.model_type != BIGRAM:
            raise ValueError(f"a BigramConfig has model_type {BIGRAM!r}, got {self.model_type!r}")
        if not isinstance(self.drop_rate, (int, float)) or not 0.0 <= self.drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {self.drop_rate!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "BigramConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown bigram config field(s): {', '.join(sorted(unknown))}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "BigramConfig":
        return dataclasses.replace(self, **changes)

    def num_parameters(self) -> int:
        return self.vocab_size * self.vocab_size

    def memory_bytes(self, *, bytes_per_param: int = 4) -> int:
        return self.num_parameters() * bytes_per_param

    def training_memory_bytes(self, batch_size: int, context_length: int | None = None) -> int:
        """Rough float32 peak for AdamW training, as `GPTConfig.training_memory_bytes`:
        weights, gradients and two moments, plus the logits, their softmax and its gradient."""
        tokens = batch_size * (context_length or self.context_length)
        return self.num_parameters() * 16 + tokens * self.vocab_size * 3 * 4

    def describe(self) -> str:
        return f"bigram table {self.vocab_size:,} x {self.vocab_size:,}"


class BigramLanguageModel(nn.Module):
    """The notebook's `BigramLanguageModel`: logits = token_embedding_table(idx)."""

    def __init__(self, cfg: BigramConfig | Mapping[str, Any]):
        super().__init__()
        cfg = cfg if isinstance(cfg, BigramConfig) else BigramConfig.from_dict(cfg)
        self.cfg = cfg
        self.token_embedding_table = nn.Embedding(cfg.vocab_size, cfg.vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.token_embedding_table(idx)  # (B, T) -> (B, T, vocab)

    def next_token_logits(self, idx: torch.Tensor, *, kv_cache: None = None,
                          all_positions: bool = False) -> torch.Tensor:
        """As `GPTModel.next_token_logits`, without a cache: the next token's logits are the
        table's row of the current token, (B, vocab), or of each token, (B, T, vocab)."""
        if kv_cache is not None:
            raise ValueError("a bigram model keeps no KV cache")
        return self(idx) if all_positions else self(idx[:, -1])  # (B, T) -> (B, vocab)

    @property
    def device(self) -> torch.device:
        return self.token_embedding_table.weight.device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
