"""The Train tab's choices: presets with their training defaults, and UI values -> configs.

Every value from the browser (or an API call that bypasses the browser) is checked here and
in `GPTConfig`/`TrainConfig`; a bad one raises ValueError with a sentence naming the field.
"""
from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any

from gpt_core.bigram import BigramConfig
from gpt_core.config import BABYGPT_TRAIN_RATIO, BIGRAM_LEARNING_RATE, GPTConfig, PRESETS, TrainConfig

from .fields import form_number
from .i18n import tr, translate_message

# Label shown in the dropdown -> preset name in gpt_core.config.PRESETS ("custom": the fields).
PRESET_CHOICES = {
    "Fast demo: 2 layers, GPT-2 BPE (seconds)": "demo",
    "Characters: 4 layers, character tokens": "char",
    "BabyGPT notebook: 4 layers, characters, random windows": "babygpt",
    "Bigram baseline (BabyGPT notebook): a lookup table": "bigram",
    "The book's GPT-124M (slow on CPU)": "book-124M",
    "Custom (edit the fields below)": "custom",
}
PRESET_LABELS = {v: k for k, v in PRESET_CHOICES.items()}
DEFAULT_PRESET_LABEL = PRESET_LABELS["demo"]

START_FROM = ("Scratch (random weights)", "GPT-2 (load it in the GPT-2 tab)", "Your model (continue training it)")

# The arithmetic of a run (gpt_core/precision.py): label on the page -> TrainConfig.precision.
# Every preset is Exact; Fast is the student's choice.
PRECISION_CHOICES = {
    "Exact (float32: the book's numbers)": "float32",
    "Fast (bfloat16)": "bfloat16",
    "Auto (Fast where this machine computes bfloat16 natively)": "auto",
}
PRECISION_LABELS = {v: k for k, v in PRECISION_CHOICES.items()}
DEFAULT_PRECISION_LABEL = PRECISION_LABELS["float32"]
# The Generate tab's: the same arithmetic (gpt_core.generate's `precision`); what Exact keeps of
# the book there is its tokens. Exact is the default, so a class sees the book's text. Its radio
# sends the name, not the label: when the page redraws the tab's label in another language, gradio
# translates a choice whose value is one of its own strings, and the translated value is refused.
GENERATION_PRECISION_CHOICES = {"Exact (float32: the book's tokens)": "float32",
                                **{label: name for label, name in PRECISION_CHOICES.items() if name != "float32"}}
DEFAULT_GENERATION_PRECISION = "float32"


def precision_name(label: str) -> str:
    """A Train-tab precision label -> its name for gpt_core; anything else (an API client's
    "half", 3, None) is refused with a sentence."""
    if isinstance(label, str) and label in PRECISION_CHOICES:
        return PRECISION_CHOICES[label]
    raise ValueError(f"Unknown precision {reprlib.repr(label)}; choose Exact, Fast or Auto.")


def generation_precision(name: str) -> str:
    """The Generate tab's precision, as its radio sends it (a name: float32, bfloat16 or auto);
    anything else, a label included, is refused with a sentence."""
    if isinstance(name, str) and name in GENERATION_PRECISION_CHOICES.values():
        return name
    raise ValueError(f"Unknown precision {reprlib.repr(name)}; choose float32 (Exact), bfloat16 (Fast) or auto.")


def precision_kind(precision) -> str:
    """"Exact (float32)" or "Fast (bfloat16)" for a gpt_core Precision, in the session's language."""
    return tr({"float32": "Exact (float32)", "bfloat16": "Fast (bfloat16)"}.get(precision.name, precision.name))


def precision_sentence(precision) -> str:
    """What the page says about a run's arithmetic: which, and why (a gpt_core Precision),
    in the session's language (the engine's reason through the table's templates)."""
    return tr("Precision: **{kind}**: {reason}.", kind=precision_kind(precision),
              reason=translate_message(precision.reason))

def train_form_values(train: TrainConfig) -> dict[str, Any]:
    """A TrainConfig as the Train form shows it (build_spec reads these back)."""
    random_windows = train.batching == "random_windows"
    return dict(num_epochs=train.num_epochs, batch_size=train.batch_size, learning_rate=train.learning_rate,
                weight_decay=train.weight_decay, eval_freq=train.eval_freq, eval_iter=train.eval_iter,
                warmup_steps=train.warmup_steps, cosine=train.lr_schedule == "cosine",
                grad_clip=train.grad_clip or 0.0, label_smoothing=train.label_smoothing, seed=train.seed,
                start_context=train.start_context, stride=train.stride or 0,
                iterations=train.max_steps if random_windows else 0,
                precision=PRECISION_LABELS.get(train.precision, DEFAULT_PRECISION_LABEL))


# Training defaults per preset: gpt_core.config.PRESETS' own (the CLI's `--preset NAME` trains
# the same); the notebook's bigram baseline trains as BabyGPT does at its own learning rate.
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    name: train_form_values(PRESETS[name].train_config()) for name in ("demo", "char", "babygpt", "book-124M")}
TRAIN_DEFAULTS["bigram"] = dict(TRAIN_DEFAULTS["babygpt"], learning_rate=BIGRAM_LEARNING_RATE)
TRAIN_FIELDS = ("num_epochs", "batch_size", "learning_rate", "weight_decay", "eval_freq", "eval_iter",
                "warmup_steps", "cosine", "grad_clip", "label_smoothing", "seed", "start_context", "stride",
                "iterations", "precision")
MODEL_FIELDS = ("context_length", "emb_dim", "n_heads", "n_layers", "drop_rate", "qkv_bias")
# What a preset fills in (then the two tokenizer radios).
PRESET_FILLS = (*MODEL_FIELDS, *TRAIN_FIELDS)
# The Train form by field name: what the handlers receive as a dict, and the /train and
# /measure API's parameter names (app.py builds it once from a name -> component mapping).
FORM_FIELDS = ("tokenizer", "preset", *MODEL_FIELDS, *TRAIN_FIELDS)


def preset_name(label: str) -> str:
    try:
        return PRESET_CHOICES[label]
    except KeyError:
        raise ValueError(f"Unknown preset {label!r}; choose one from the list.") from None


def preset_fields(label: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(model fields, training fields, tokenizer kind) that a preset fills in."""
    name = preset_name(label)
    if name == "custom":
        raise ValueError("Custom keeps the fields as they are.")
    preset = PRESETS["babygpt" if name == "bigram" else name]  # the bigram's fields stay the notebook's
    model = {k: getattr(preset.config, k) for k in MODEL_FIELDS}
    return model, dict(TRAIN_DEFAULTS[name]), preset.tokenizer


@dataclass(frozen=True)
class RunSpec:
    """Everything a training run needs, checked."""
    model: GPTConfig | BigramConfig  # vocab_size filled from the tokenizer
    train: TrainConfig
    tokenizer: str
    preset: str


def build_spec(*, tokenizer: str, vocab_size: int, preset_label: str, context_length, emb_dim,
               n_heads, n_layers, drop_rate, qkv_bias, num_epochs, batch_size, learning_rate,
               weight_decay, eval_freq, eval_iter, warmup_steps, cosine, grad_clip, label_smoothing,
               seed, start_context, stride, tie_weights: bool | None = None, iterations=0,
               precision: str = DEFAULT_PRECISION_LABEL) -> RunSpec:
    """UI values -> (GPTConfig, TrainConfig). Ranges are what a 2-core server can train."""
    preset = preset_name(preset_label)
    if tokenizer not in ("gpt2", "char"):
        raise ValueError(f"Unknown tokenizer {tokenizer!r}; choose GPT-2 BPE or Characters.")
    ctx = form_number(context_length, "Context length", 4, 1024, whole=True)
    emb = form_number(emb_dim, "Embedding size (emb_dim)", 8, 1600, whole=True)
    heads = form_number(n_heads, "Attention heads (n_heads)", 1, 64, whole=True)
    if emb % heads:
        raise ValueError(f"Embedding size {emb} must be divisible by the number of heads {heads}.")
    layers = form_number(n_layers, "Layers (n_layers)", 1, 48, whole=True)
    drop = form_number(drop_rate, "Dropout (drop_rate)", 0.0, 0.9)
    if tie_weights is None:  # the preset's head (all of the page's are the book's, untied)
        tie_weights = PRESETS[preset].config.tie_weights if preset in PRESETS else False
    model = GPTConfig(vocab_size=vocab_size, context_length=ctx, emb_dim=emb, n_heads=heads,
                      n_layers=layers, drop_rate=drop, qkv_bias=bool(qkv_bias), tie_weights=bool(tie_weights))
    if preset == "bigram":  # the notebook's baseline: one vocab x vocab table, windows of `ctx`
        model = BigramConfig(vocab_size=vocab_size, context_length=ctx)
    iters = form_number(iterations, "Iterations", 0, 1_000_000, whole=True, empty=0)
    # Iterations > 0: the notebook's random windows over an 80/20 split of the tokens.
    batching = dict(batching="random_windows", max_steps=iters, train_ratio=BABYGPT_TRAIN_RATIO) if iters else {}
    stride_value = form_number(stride, "Stride", 0, 1024, whole=True, empty=0)
    warmup = form_number(warmup_steps, "Warmup steps", 0, 100_000, whole=True)
    clip = form_number(grad_clip, "Gradient clipping", 0.0, 1000.0, empty=0.0)
    seed_value = form_number(seed, "Seed", 0, 2**31 - 1, whole=True, empty=None)
    if not isinstance(start_context, str) or not start_context.strip():
        raise ValueError("Start context is empty; type a few words for the model to continue after each epoch.")
    if len(start_context) > 500:
        raise ValueError("Start context is longer than 500 characters; a sentence is enough.")
    train = TrainConfig(
        num_epochs=form_number(num_epochs, "Epochs", 1, 1000, whole=True),
        batch_size=form_number(batch_size, "Batch size", 1, 512, whole=True),
        learning_rate=form_number(learning_rate, "Learning rate", 0.0, 1.0, lo_open=True),
        weight_decay=form_number(weight_decay, "Weight decay", 0.0, 10.0),
        eval_freq=form_number(eval_freq, "Evaluate every (steps)", 1, 100_000, whole=True),
        eval_iter=form_number(eval_iter, "Evaluation batches", 1, 1000, whole=True),
        lr_schedule="cosine" if cosine else "constant",
        warmup_steps=warmup,
        grad_clip=clip or None,
        label_smoothing=form_number(label_smoothing, "Label smoothing", 0.0, 0.5),
        seed=seed_value,
        start_context=start_context,
        stride=stride_value or None,
        timeline=True,  # the Train tab replays every run (playground/replay.py)
        precision=precision_name(precision),
        **batching,
    )
    return RunSpec(model=model, train=train, tokenizer=tokenizer, preset=preset)
