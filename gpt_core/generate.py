"""Text generation: the book's `generate` with a KV cache, streaming, the next token opened
up, and scoring a text.

`generate` gives the book's outputs (`llms_from_scratch.ch05.generate`): greedy runs pick
the same tokens, and sampled runs the same tokens for the same seed, because the logits
are the same numbers and the token is chosen by the same operations in the same order
(see `sampling.py`). Only the work per token differs: with the cache, each step feeds the
one new token instead of the whole window, and the output head runs on the last position only.

Generation asks the model for its next-token logits (`GPTModel.next_token_logits`: through
a KV cache, never with dropout) and never changes the model's train/eval mode (the book
switches to eval before sampling); a model without that method (the book's, say) is simply
called on the window each step, in whatever mode it is in.

`precision` is training's (precision.py): "float32", the default, gives the book's tokens and
decodes with the weights input-major (decoding.py); "bfloat16" decodes on a bfloat16 copy of
the weights with a bfloat16 KV cache (a model without a cache runs under bfloat16 autocast);
"auto" takes bfloat16 where the hardware computes it natively. Sampling always reads float32
logits.

The book's `text_to_token_ids` and `token_ids_to_text` live here too, beside generation as
in its chapter 5.
"""
from __future__ import annotations

import codecs
import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from .losses import perplexity
from .precision import Precision, autocast, precision_for
from .config import check_precision
from .device import step_settings
from .generate_checks import _check_idx, _check_options, _context_size, _device_of, _model_limits
from .sampling import (Distribution, check_temperature, check_top_k, check_top_p, describe_distribution,
                       sample_next_token)
from .tokenizers import ENDOFTEXT, CharTokenizer, GPT2Tokenizer


# --- the book's text <-> ids helpers ----------------------------------------------------------


def text_to_token_ids(text: str, tokenizer: Any) -> torch.Tensor:
    """(1, T) tensor of ids, batch dimension added, as in the book's chapter 5."""
    if isinstance(tokenizer, (GPT2Tokenizer, CharTokenizer)):
        encoded = tokenizer.encode(text)
    else:  # a raw tiktoken Encoding, as the book passes
        encoded = tokenizer.encode(text, allowed_special={ENDOFTEXT})
    return torch.tensor(encoded, dtype=torch.long).unsqueeze(0)


def token_ids_to_text(token_ids: torch.Tensor, tokenizer: Any) -> str:
    flat = token_ids.squeeze(0)
    return tokenizer.decode(flat.tolist())

# --- the book's greedy loop -----------------------------------------------------------------


@torch.no_grad()
def generate_text_simple(model: torch.nn.Module, idx: torch.Tensor, max_new_tokens: int,
                         context_size: int) -> torch.Tensor:
    """Greedy decoding, recomputing the whole window each step (the book's chapter 4)."""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        logits = model(idx_cond)[:, -1, :]
        idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


# --- the model's next-token logits ----------------------------------------------------------------


def _new_cache(model: torch.nn.Module, batch_size: int, max_len: int, precision: Precision | None = None) -> Any:
    """The model's own KV cache, or None for a model that keeps none (the bigram, the book's).
    With a `precision`, the cache decodes with weights in its dtype and layout (decoding.py);
    without, with the parameters as they are (scoring and one-off logits: no copies)."""
    make = getattr(model, "new_kv_cache", None)
    if make is None:
        return None
    if precision is None:
        return make(batch_size, max_len)
    return make(batch_size, max_len, dtype=precision.dtype, decode_weights=True)


def _decoding_precision(model: torch.nn.Module, precision: str) -> Precision:
    check_precision(precision)
    return precision_for(precision, _device_of(model))


def _logits(model: torch.nn.Module, ids: torch.Tensor, cache: Any = None, *, fresh: bool = True,
            all_positions: bool = False) -> torch.Tensor:
    """Next-token logits, (B, vocab), or (B, T, vocab) with `all_positions`, as the model gives
    them (`next_token_logits`); any other module mapping (B, T) ids to (B, T, vocab) logits is
    called on the ids. `fresh`: `ids` is a whole window, so the cache is emptied first;
    otherwise `ids` continues the tokens it holds."""
    forward = getattr(model, "next_token_logits", None)
    if forward is None:
        logits = model(ids)
        return logits if all_positions else logits[:, -1, :]
    if cache is not None and fresh:
        cache.reset()
    return forward(ids, kv_cache=cache, all_positions=all_positions)


# --- the token loop -----------------------------------------------------------------------------

# Called at each generated token with the logits it was drawn from, (B, vocab), and the drawn
# ids, (B, 1): how a timeline or an inspector sees the candidates without another forward.
StepHook = Callable[[torch.Tensor, torch.Tensor], None]


@torch.inference_mode()
def _token_steps(model: torch.nn.Module, idx: torch.Tensor, max_new_tokens: int, context_size: int, *,
                 temperature: float, top_k: int | None, top_p: float | None, eos_id: int | None,
                 generator: torch.Generator | None, use_cache: bool,
                 precision: Precision, on_step: StepHook | None = None) -> Iterator[torch.Tensor]:
    """Yield each new column of token ids, (B, 1), arguments already checked. `on_step`
    sees each step's logits (B, vocab) and the ids drawn from them, before they are yielded.

    A row that has produced `eos_id` keeps producing `eos_id` (padding) while other rows go
    on; the step at which every row has finished is not yielded, so a single row stops just
    before its end-of-text token, as the book's `generate` does.

    The window, as the book handles it: each step conditions on the last `context_size`
    tokens, positions counted from 0 at the window's start. While the text fits, the cache
    only grows, one token a step. Once it is full, sliding the window by one token shifts
    every position, and with learned absolute position embeddings that changes every key
    and value; so from then on each step re-fills the cache from the last `context_size`
    tokens (a prefill, still only the last position's logits). A rolling cache that kept the
    old keys would be cheaper but would no longer give the book's tokens.
    """
    batch_size, prompt_len = idx.shape
    tokens = torch.empty(batch_size, prompt_len + max_new_tokens, dtype=torch.long, device=idx.device)
    tokens[:, :prompt_len] = idx
    n = prompt_len
    # Never longer than the text will get: a short run on a long-context model stays small.
    cache = _new_cache(model, batch_size, min(context_size, prompt_len + max_new_tokens), precision)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=idx.device) if eos_id is not None else None

    for step in range(max_new_tokens):
        # Entered per step, not around the loop: a generator must not leave them on between yields.
        with step_settings(precision, idx.device), (
                autocast(precision, idx.device) if cache is None else contextlib.nullcontext()):
            if step == 0 or not use_cache or cache is None or cache.length >= context_size:
                logits = _logits(model, tokens[:, max(0, n - context_size):n], cache)  # the window: (B, vocab)
            else:
                logits = _logits(model, tokens[:, n - 1:n], cache, fresh=False)  # one new token: (B, vocab)
        logits = logits.float()  # (a no-op in float32)
        next_ids = sample_next_token(logits, temperature=temperature, top_k=top_k, top_p=top_p,
                                     generator=generator)  # (B, 1)
        if finished is not None:
            next_ids.masked_fill_(finished.unsqueeze(1), eos_id)
            finished |= next_ids[:, 0] == eos_id
            if bool(finished.all()):
                return
        tokens[:, n] = next_ids[:, 0]
        n += 1
        if on_step is not None:
            on_step(logits, next_ids)
        yield next_ids


def generate(model: torch.nn.Module, idx: torch.Tensor, max_new_tokens: int, context_size: int | None = None, *,
             temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             eos_id: int | None = None, generator: torch.Generator | None = None, seed: int | None = None,
             use_cache: bool = True, on_step: StepHook | None = None,
             precision: str = "float32") -> torch.Tensor:
    """The book's `generate`, with nucleus sampling, per-row end-of-text and a KV cache.

    idx: (B, T) token ids to continue. Returns (B, T + new) ids. `context_size` defaults to
    the model's context length. Temperature 0 is greedy; otherwise top-k filter, temperature,
    top-p filter, then a multinomial draw. Randomness comes from `generator`, or a fresh one
    seeded with `seed`, or else PyTorch's global RNG (so `torch.manual_seed(s)` then this call
    picks the book's tokens). With `eos_id`, a row that produces it is padded with it while the
    others continue; generation stops when every row has, the final end-of-text step not
    appended (the book's behaviour for one row). `use_cache=False` recomputes the whole
    window every step, as the book does. `on_step(logits, ids)` sees every step (StepHook).
    `precision`: "float32" (the book's tokens), "bfloat16" or "auto" (module docstring).
    """
    vocab_size, _ = _model_limits(model)
    _check_idx(idx, vocab_size)
    context_size, generator = _check_options(model, max_new_tokens, context_size, temperature, top_k,
                                             top_p, eos_id, generator, seed)
    decoding = _decoding_precision(model, precision)
    idx = idx.to(_device_of(model))
    if seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    columns = list(_token_steps(model, idx, max_new_tokens, context_size, temperature=float(temperature),
                                top_k=top_k, top_p=top_p, eos_id=eos_id, generator=generator,
                                use_cache=use_cache, on_step=on_step, precision=decoding))
    # Outside inference mode, so the result is an ordinary tensor a caller may train on.
    return torch.cat([idx, *columns], dim=1)


# --- streaming text -------------------------------------------------------------------------------


class TextDecoder:
    """Turns token ids into text piece by piece without ever splitting a character.

    A GPT-2 token can hold part of a multi-byte UTF-8 character (Chinese, emoji); its text
    alone would be U+FFFD. Bytes of an unfinished character wait for the next token, so
    `"".join(pieces) == tokenizer.decode(all_ids)`: only bytes that never form a character
    (or an unfinished one at `flush`) become U+FFFD, exactly as `decode` would show them.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, ids: Sequence[int]) -> str:
        return self._utf8.decode(self.tokenizer.decode_bytes(list(ids)))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


def stream_generate(model: torch.nn.Module, tokenizer: Any, prompt: str | Sequence[int] | torch.Tensor,
                    max_new_tokens: int, context_size: int | None = None, *, temperature: float = 0.0,
                    top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
                    generator: torch.Generator | None = None, seed: int | None = None,
                    use_cache: bool = True, on_step: StepHook | None = None,
                    precision: str = "float32") -> Iterator[str]:
    """Yield the continuation of `prompt` as text, piece by piece as tokens are produced.

    Same tokens as `generate` with the same arguments (one row). The prompt is a string, a
    list of ids or a (1, T) tensor; pass `eos_id=tokenizer.eot_id` to stop at end-of-text.
    Pieces are never empty and never end in half a character.
    """
    if isinstance(prompt, str):
        idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long)
        if idx.shape[1] == 0:
            raise ValueError("the prompt is empty: type at least one character to continue")
    elif isinstance(prompt, torch.Tensor):
        idx = prompt if prompt.dim() == 2 else prompt.reshape(1, -1)
    else:
        idx = torch.tensor([list(prompt)], dtype=torch.long)
    if idx.shape[0] != 1:
        raise ValueError("stream_generate continues one text; give a single prompt")
    idx = idx.to(_device_of(model))
    vocab_size, _ = _model_limits(model)
    _check_idx(idx, vocab_size)
    context_size, generator = _check_options(model, max_new_tokens, context_size, temperature, top_k,
                                             top_p, eos_id, generator, seed)
    decoding = _decoding_precision(model, precision)
    if seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    return _stream(model, tokenizer, idx, max_new_tokens, context_size, temperature=float(temperature),
                   top_k=top_k, top_p=top_p, eos_id=eos_id, generator=generator, use_cache=use_cache,
                   on_step=on_step, precision=decoding)


def _stream(model, tokenizer, idx, max_new_tokens, context_size, **options) -> Iterator[str]:
    # Separate from stream_generate so bad arguments raise at the call, not at the first next().
    decoder = TextDecoder(tokenizer)
    for column in _token_steps(model, idx, max_new_tokens, context_size, **options):
        piece = decoder.push([int(column[0, 0])])
        if piece:
            yield piece
    tail = decoder.flush()
    if tail:
        yield tail


# --- the next token, opened up ----------------------------------------------------------------


@torch.inference_mode()
def next_token_logits(model: torch.nn.Module, idx: torch.Tensor, context_size: int | None = None) -> torch.Tensor:
    """(vocab,) logits for the token after the first row of `idx` (last `context_size` tokens)."""
    vocab_size, context_length = _model_limits(model)
    _check_idx(idx, vocab_size)
    context_size = _context_size(context_size, context_length, default=idx.shape[1])
    window = idx[:1, -context_size:].to(_device_of(model))
    return _logits(model, window)[0].clone()


def next_token_distribution(model: torch.nn.Module, idx: torch.Tensor, *, temperature: float = 1.0,
                            top_k: int | None = None, top_p: float | None = None, top_n: int = 10,
                            tokenizer: Any = None, context_size: int | None = None) -> Distribution:
    """The `top_n` likeliest next tokens with their probability before and after each filter
    (raw softmax, top-k, temperature, top-p), for a chart. Labels come from `tokenizer`."""
    check_temperature(temperature)
    check_top_k(top_k)
    check_top_p(top_p)
    logits = next_token_logits(model, idx, context_size)
    labels = None
    if tokenizer is not None:
        labels = _LazyLabels(tokenizer)
    return describe_distribution(logits, temperature=temperature, top_k=top_k, top_p=top_p, top_n=top_n,
                                 labels=labels)


class _LazyLabels:
    """Labels decoded only for the few ids asked for (not the whole vocabulary)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def __getitem__(self, token_id: int) -> str:
        if hasattr(self.tokenizer, "token_strings"):
            return self.tokenizer.token_strings([token_id])[0]
        return self.tokenizer.decode([token_id])


# --- scoring a text ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextScore:
    """How well the model predicts a text, token by token (the book's "text generation loss").

    target_ids[b, i] is the token that actually came next and target_probs[b, i] the
    probability the model gave it; ranks[b, i] its place among the model's guesses (1 = the
    most likely) and top_ids[b, i] the model's own first guess; cross_entropy is the mean of
    -log(target_probs) and perplexity its exp.
    """
    target_ids: torch.Tensor  # (B, T - 1)
    target_probs: torch.Tensor  # (B, T - 1)
    log_probs: torch.Tensor  # (B, T - 1)
    cross_entropy: float
    perplexity: float
    ranks: torch.Tensor | None = None  # (B, T - 1), 1 = the model's first guess
    top_ids: torch.Tensor | None = None  # (B, T - 1)


@torch.inference_mode()
def _target_log_probs(model: torch.nn.Module, ids: torch.Tensor,
                      context_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # Windows of context_size inputs one after another (the book's data loader with
    # stride == context length): every token but the first is predicted, from up to
    # context_size tokens of its own window. Returns (log p, rank, first guess) of each.
    batch_size, total = ids.shape
    cache = _new_cache(model, batch_size, min(context_size, total))
    pieces, ranks, tops = [], [], []
    for start in range(0, total - 1, context_size):
        inputs = ids[:, start:start + context_size]
        targets = ids[:, start + 1:start + 1 + inputs.shape[1]]
        inputs = inputs[:, :targets.shape[1]]
        logits = _logits(model, inputs, cache, all_positions=True)  # (B, T, vocab)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        target = log_probs.gather(-1, targets.unsqueeze(-1))  # (B, T, 1)
        pieces.append(target.squeeze(-1))
        ranks.append((log_probs > target).sum(-1) + 1)  # tokens the model found likelier, + 1
        tops.append(log_probs.argmax(-1))
    return torch.cat(pieces, dim=1), torch.cat(ranks, dim=1), torch.cat(tops, dim=1)


def score_text(model: torch.nn.Module, token_ids: Sequence[int] | torch.Tensor, *,
               context_size: int | None = None) -> TextScore:
    """Probability of each actual next token, cross-entropy and perplexity of a text.

    token_ids: a list or 1-D tensor of ids, or a (B, T) batch; at least two tokens. Texts
    longer than the context are scored in consecutive windows.
    """
    ids = token_ids if isinstance(token_ids, torch.Tensor) else torch.tensor(list(token_ids), dtype=torch.long)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    vocab_size, context_length = _model_limits(model)
    _check_idx(ids, vocab_size)
    if ids.shape[1] < 2:
        raise ValueError("scoring needs at least two tokens: one to predict from and one to predict")
    context_size = _context_size(context_size, context_length)
    ids = ids.to(_device_of(model))
    log_probs, ranks, top_ids = (t.clone() for t in _target_log_probs(model, ids, context_size))
    cross_entropy = float(-log_probs.mean())
    return TextScore(target_ids=ids[:, 1:].clone(), target_probs=log_probs.exp(), log_probs=log_probs,
                     cross_entropy=cross_entropy, perplexity=perplexity(cross_entropy), ranks=ranks,
                     top_ids=top_ids)
