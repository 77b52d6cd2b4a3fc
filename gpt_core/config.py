"""Model configuration: the book's field names, validated, with presets.

`GPTConfig` mirrors the plain dict of "Build a Large Language Model (From Scratch)"
(`GPT_CONFIG_124M`), so `GPTConfig.from_dict(GPT_CONFIG_124M)` and `cfg.to_dict()` move
between this project and the book's code unchanged.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

# The book's fields, in the book's order. Anything else in a config is ours.
BOOK_FIELDS = ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "drop_rate", "qkv_bias")

GPT2_VOCAB_SIZE = 50257


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = GPT2_VOCAB_SIZE
    context_length: int = 256
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    drop_rate: float = 0.1
    qkv_bias: bool = False
    # GPT-2 shares the token embedding with the output head; the book's model does not.
    tie_weights: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.emb_dim % self.n_heads != 0:
            raise ValueError(
                f"emb_dim ({self.emb_dim}) must be divisible by n_heads ({self.n_heads})"
            )
        if (isinstance(self.drop_rate, bool) or not isinstance(self.drop_rate, (int, float))
                or not (0.0 <= self.drop_rate < 1.0)):
            raise ValueError(f"drop_rate must be in [0, 1), got {self.drop_rate!r}")
        for name in ("qkv_bias", "tie_weights"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    @property
    def head_dim(self) -> int:
        return self.emb_dim // self.n_heads

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GPTConfig":
        """Build from the book's plain dict (extra keys of ours are accepted, others rejected)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """The book's dict (plus `tie_weights`, which the book's code ignores)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "GPTConfig":
        return dataclasses.replace(self, **changes)

    # --- sizes, counted as the book counts them -------------------------------------
    def num_parameters(self) -> int:
        """Unique trainable parameters (a tied head counts once), as `sum(p.numel())`."""
        d, v, L = self.emb_dim, self.vocab_size, self.n_layers
        attn = 3 * (d * d + (d if self.qkv_bias else 0)) + d * d + d
        ff = d * 4 * d + 4 * d + 4 * d * d + d
        norms = 2 * 2 * d
        per_block = attn + ff + norms
        head = 0 if self.tie_weights else v * d
        return v * d + self.context_length * d + L * per_block + 2 * d + head

    def num_parameters_gpt2_style(self) -> int:
        """Parameters without a separate output head: the book's "124M" figure."""
        return self.num_parameters() - (0 if self.tie_weights else self.vocab_size * self.emb_dim)

    def memory_bytes(self, *, bytes_per_param: int = 4) -> int:
        """Weights alone, float32 by default (the book's `total_params * 4`)."""
        return self.num_parameters() * bytes_per_param

    def training_memory_bytes(self, batch_size: int, context_length: int | None = None) -> int:
        """Rough peak for AdamW training in float32: weights, gradients, two moments
        (16 bytes a parameter) plus the activations kept for backward."""
        T = context_length or self.context_length
        d, L, v = self.emb_dim, self.n_layers, self.vocab_size
        tokens = batch_size * T
        # Per block ~ 34*d floats a token kept for backward, plus the attention maps.
        per_block = tokens * 34 * d + batch_size * self.n_heads * T * T * 2
        logits = tokens * v * 3  # logits, softmax and its gradient
        activations = (L * per_block + logits) * 4
        return self.num_parameters() * 16 + activations


def _gpt2(emb_dim: int, n_layers: int, n_heads: int) -> GPTConfig:
    # As the book loads GPT-2: its 124M dict updated with the size, context 1024, qkv bias.
    return GPTConfig(context_length=1024, emb_dim=emb_dim, n_layers=n_layers, n_heads=n_heads,
                     qkv_bias=True, tie_weights=True)


# The book's chapter 4/5 configuration (context shortened to 256 for CPU training).
GPT_CONFIG_124M: dict[str, Any] = {
    "vocab_size": 50257,
    "context_length": 256,
    "emb_dim": 768,
    "n_heads": 12,
    "n_layers": 12,
    "drop_rate": 0.1,
    "qkv_bias": False,
}

GPT2_SIZES: dict[str, GPTConfig] = {
    "124M": _gpt2(768, 12, 12),
    "355M": _gpt2(1024, 24, 16),
    "774M": _gpt2(1280, 36, 20),
    "1558M": _gpt2(1600, 48, 25),
}


# --- the BabyGPT notebook's training (its model is the "babygpt" preset) -------------------
BABYGPT_TRAIN_RATIO = 0.8
BABYGPT_ITERATIONS = 3000
# ... and its training: batch 128, AdamW lr 1e-3 with torch's default weight decay 0.01,
# 3,000 iterations, loss estimated every 100 iterations over 200 batches of each split.
BABYGPT_TRAIN: dict[str, Any] = dict(
    batching="random_windows", max_steps=BABYGPT_ITERATIONS, num_epochs=1, batch_size=128,
    learning_rate=1e-3, weight_decay=0.01, eval_freq=100, eval_iter=200, train_ratio=BABYGPT_TRAIN_RATIO,
    start_context="子曰：", sample_tokens=100)


@dataclass(frozen=True)
class Preset:
    """A named model with how to train it: the one table the page and the CLI both read.
    `vocab_size` of character presets is set from the corpus's tokenizer when the model is
    built; `train` holds the TrainConfig fields that differ from the book's chapter 5 run."""
    name: str
    config: GPTConfig
    tokenizer: str  # "gpt2" or "char"
    description: str
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def train_config(self, **overrides: Any) -> "TrainConfig":
        return TrainConfig(**{**self.train, **overrides})


# The demo takes bigger batches and a higher learning rate than the book, so a 2-layer model
# shows in 90 steps what the book's 124M shows in its run: training loss falling fast,
# validation loss turning up after a few epochs, samples quoting The Verdict. Measured on The
# Verdict after 10 epochs (train / val / best val): lr 1e-3 5.31 / 6.41 / 6.41 (still
# learning, samples "and the, the of the"); 3e-3 2.64 / 6.22 / 6.18; 6e-3 1.00 / 6.98 / 6.36
# (memorised sentences). Its head is the book's, untied: 13.3M parameters.
DEMO_TRAIN: dict[str, Any] = dict(num_epochs=10, batch_size=8, learning_rate=6e-3, weight_decay=0.1,
                                  eval_freq=3, eval_iter=2)
CHAR_TRAIN: dict[str, Any] = dict(num_epochs=10, batch_size=16, learning_rate=2e-3, weight_decay=0.1,
                                  eval_freq=5, eval_iter=2, lr_schedule="cosine", warmup_steps=10,
                                  grad_clip=1.0)

PRESETS: dict[str, Preset] = {
    "demo": Preset(
        "demo",
        GPTConfig(context_length=64, emb_dim=128, n_heads=4, n_layers=2, drop_rate=0.1),
        "gpt2",
        "Fast demo: 10 epochs of The Verdict in about a minute on 2 CPU cores.",
        DEMO_TRAIN,
    ),
    "char": Preset(
        "char",
        GPTConfig(vocab_size=65, context_length=128, emb_dim=128, n_heads=4, n_layers=4,
                  drop_rate=0.1),
        "char",
        "Character-level: small vocabulary, longer context; for Tiny Shakespeare or 论语.",
        CHAR_TRAIN,
    ),
    "babygpt": Preset(
        "babygpt",
        GPTConfig(vocab_size=65, context_length=64, emb_dim=64, n_heads=4, n_layers=4, drop_rate=0.0),
        "char",
        "The BabyGPT notebook: 4 layers, 4 heads, 64 wide, context 64, no dropout; characters, "
        "80/20 split, 3,000 iterations over random windows of batch 128 (schedule.py).",
        BABYGPT_TRAIN,
    ),
    "book-124M": Preset(
        "book-124M",
        GPTConfig.from_dict(GPT_CONFIG_124M),
        "gpt2",
        "The book's GPT_CONFIG_124M (context 256): the book's own numbers; slow on CPU.",
    ),
    **{
        f"gpt2-{size}": Preset(f"gpt2-{size}", cfg, "gpt2", f"OpenAI GPT-2 {size} shape (context 1024).")
        for size, cfg in GPT2_SIZES.items()
    },
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# --- training -----------------------------------------------------------------------------
MAX_EPOCHS = 100_000
PRECISIONS = ("float32", "bfloat16", "auto", "tf32")  # what each means: precision.py


def check_precision(name: object) -> str:
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return name
_DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class TrainConfig:
    """How to train, with the book's chapter 5 run as the defaults (AdamW lr 4e-4, weight
    decay 0.1, batch 2, 10 epochs, evaluate every 5 steps on 5 batches, seed 123).

    Every field is checked on construction; a bad value raises ValueError naming the field.
    """
    num_epochs: int = 10
    batch_size: int = 2  # per process under torchrun
    learning_rate: float = 4e-4  # the peak when warming up / decaying
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)  # torch's AdamW defaults, as the book uses
    eval_freq: int = 5  # optimizer steps between evaluations
    eval_iter: int = 5  # batches per evaluation
    start_context: str = "Every effort moves you"
    sample_tokens: int = 50  # the book's generate_and_print_sample
    # "constant" (the book's chapter 5) or "cosine": linear warmup from `initial_lr` to
    # `learning_rate`, then cosine decay to `min_lr` (the book's appendix D).
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    initial_lr: float | None = None  # default: learning_rate / 10 (appendix D's ratio)
    min_lr: float | None = None  # default: learning_rate / 10
    grad_clip: float | None = None  # max global gradient norm (appendix D uses 1.0)
    clip_during_warmup: bool = True  # False: clip from the end of warmup on, as appendix D
    label_smoothing: float = 0.0
    grad_accum_steps: int = 1
    drop_rate: float | None = None  # overrides the model config's drop_rate when set
    seed: int | None = 123
    device: str = "auto"  # auto = CUDA, then MPS, then CPU
    threads: int | None = None  # torch.set_num_threads; None leaves torch's choice
    early_stopping_patience: int | None = None  # evaluations without a new best val loss
    overfit_patience: int = 2  # evaluations in a row of rising val loss that flag overfitting (2 or more)
    max_steps: int | None = None  # cap on optimizer steps (the run may end mid-epoch)
    stride: int | None = None  # sliding-window stride; None = context length (the book)
    train_ratio: float = 0.9
    shuffle: bool = True
    checkpoint_every: int | None = None  # optimizer steps between checkpoints (and each epoch)
    # "epochs": the book's epochs over sliding windows. "random_windows": the BabyGPT
    # notebook's `max_steps` iterations, each over `batch_size` windows at random starts
    # (schedule.RandomWindowSchedule); the train/val split is then of the token ids.
    batching: str = "epochs"
    # At each evaluation keep the greedy sample and the next-token candidates of the start
    # context (gpt_core/timeline.py): the playground replays the run with them.
    timeline: bool = False
    # "float32" (exact: the book's numbers), "bfloat16" (mixed precision: bfloat16 products,
    # float32 weights, optimizer state and loss), "auto" (bfloat16 where the hardware computes
    # it natively) or "tf32" (CUDA's TF32 products); see precision.py.
    precision: str = "float32"
    compile: bool = False  # torch.compile the training forward (same events and checkpoints)

    def __post_init__(self) -> None:
        def integer(name: str, lo: int, hi: int | None = None, *, optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            bad = isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi)
            if bad:
                span = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
                raise ValueError(f"{name} must be a whole number {span}, got {value!r}")

        def number(name: str, lo: float, hi: float | None = None, *, lo_open: bool = False,
                   hi_open: bool = False, optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            ok = is_finite_number(value) and (value > lo if lo_open else value >= lo)
            if ok and hi is not None:
                ok = value < hi if hi_open else value <= hi
            if not ok:
                span = ("greater than" if lo_open else "at least") + f" {lo}"
                if hi is not None:
                    span += (" and below" if hi_open else " and at most") + f" {hi}"
                raise ValueError(f"{name} must be a finite number {span}, got {value!r}")

        integer("num_epochs", 1, MAX_EPOCHS)
        integer("batch_size", 1, 65_536)
        number("learning_rate", 0.0, 10.0, lo_open=True)
        number("weight_decay", 0.0, 10.0)
        if (not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2
                or not all(is_finite_number(b) and 0.0 <= b < 1.0 for b in self.betas)):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        integer("eval_freq", 1)
        integer("eval_iter", 1, 1_000_000)
        if not isinstance(self.start_context, str):
            raise ValueError(f"start_context must be a text, got {self.start_context!r}")
        integer("sample_tokens", 0, 100_000)
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        integer("warmup_steps", 0)
        number("initial_lr", 0.0, self.learning_rate, optional=True)
        number("min_lr", 0.0, self.learning_rate, optional=True)
        number("grad_clip", 0.0, lo_open=True, optional=True)
        number("label_smoothing", 0.0, 1.0, hi_open=True)
        integer("grad_accum_steps", 1, 65_536)
        number("drop_rate", 0.0, 1.0, hi_open=True, optional=True)
        integer("seed", 0, 2**63 - 1, optional=True)
        if not isinstance(self.device, str) or not (
                self.device in _DEVICES or (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ValueError(f"device must be one of {', '.join(_DEVICES)} or cuda:N, got {self.device!r}")
        integer("threads", 1, 1024, optional=True)
        integer("early_stopping_patience", 1, optional=True)
        integer("overfit_patience", 2)
        integer("max_steps", 1, optional=True)
        integer("stride", 1, optional=True)
        number("train_ratio", 0.0, 1.0, lo_open=True, hi_open=True)
        check_precision(self.precision)
        for name in ("shuffle", "clip_during_warmup", "compile", "timeline"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        integer("checkpoint_every", 1, optional=True)
        if self.batching not in ("epochs", "random_windows"):
            raise ValueError(f"batching must be 'epochs' or 'random_windows', got {self.batching!r}")
        if self.batching == "random_windows" and self.max_steps is None:
            raise ValueError("batching 'random_windows' trains for max_steps iterations: set max_steps")

    @property
    def warmup_start_lr(self) -> float:
        return self.learning_rate / 10 if self.initial_lr is None else self.initial_lr

    @property
    def final_lr(self) -> float:
        return self.learning_rate / 10 if self.min_lr is None else self.min_lr

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


BIGRAM_LEARNING_RATE = 1e-2  # the notebook trains its bigram table ten times faster


def babygpt_train_config(**overrides: Any) -> TrainConfig:
    """The notebook's training options as a TrainConfig; `overrides` change any field."""
    return TrainConfig(**{**BABYGPT_TRAIN, **overrides})


def bigram_train_config(**overrides: Any) -> TrainConfig:
    """The notebook's bigram run: the BabyGPT options with AdamW lr 1e-2."""
    return babygpt_train_config(**{"learning_rate": BIGRAM_LEARNING_RATE, **overrides})
