"""GPTModel: the book's architecture and names, with fused PyTorch kernels underneath.

Module names, parameter names and construction order follow `llms_from_scratch.ch04`, so
`torch.manual_seed(123); GPTModel(cfg)` draws exactly the book's initial weights and state
dicts load both ways. What differs is only *how* the same numbers are computed:
`scaled_dot_product_attention` instead of an explicit masked softmax, `F.layer_norm` on the
book's `scale`/`shift`, and PyTorch's tanh GELU.

Generation adds a second path through the same modules: `next_token_logits(ids, kv_cache=cache)`
feeds only the new tokens and keeps every layer's keys and values in a preallocated
`KVCache`, so each new token costs one token's worth of work instead of the whole window.
A cache made with `decode_weights=True` also carries the weights in the layout and dtype
one-row products read fastest (decoding.py): input-major, in float32 or bfloat16.
The training path (`forward`, `hidden_states` without a cache) is untouched by it.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .bigram import BIGRAM, BigramConfig, BigramLanguageModel
from .config import GPTConfig
from .decoding import DecodeWeights
from .decoding import decode_weights as decoding_weights  # (the parameter below is named decode_weights)
from .fast_dropout import Dropout, causal_attention, fast_masks


def as_config(cfg: GPTConfig | Mapping[str, Any]) -> GPTConfig:
    """Accept our dataclass or the book's plain dict, so the book's snippets run unchanged."""
    return cfg if isinstance(cfg, GPTConfig) else GPTConfig.from_dict(cfg)


class KVCache:
    """Keys and values of every layer for up to `max_len` positions, allocated once.

    Generation writes each step's keys and values in place (no `torch.cat` of the whole
    cache per token) and attends over the filled prefix. `length` is how many positions are
    filled; every layer holds the same positions. Inference only: never applies dropout.
    """

    def __init__(self, *, n_layers: int, batch_size: int, n_heads: int, head_dim: int,
                 max_len: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 weights: DecodeWeights | None = None):
        if batch_size < 1 or max_len < 1:
            raise ValueError(f"a KV cache needs batch_size >= 1 and max_len >= 1, got {batch_size}, {max_len}")
        shape = (n_layers, batch_size, n_heads, max_len, head_dim)  # per layer (B, H, L, hd)
        # Uninitialised on purpose: only the filled prefix [:length] is ever read.
        self.keys = torch.empty(shape, device=device, dtype=dtype)
        self.values = torch.empty(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.length = 0
        self.weights = weights  # None: the model's own parameters, as they are

    @classmethod
    def for_model(cls, model: "GPTModel", batch_size: int, max_len: int | None = None, *,
                  dtype: torch.dtype | None = None, decode_weights: bool = False) -> "KVCache":
        """A cache sized for `model` (up to its context length by default). `dtype`: of the keys
        and values (default: the weights'). `decode_weights`: decode with the weights in
        `dtype` and the layout one-row products read fastest (decoding.py), kept on the model
        from its last generation while its parameters are unchanged, else copied now."""
        cfg = model.cfg
        max_len = cfg.context_length if max_len is None else max_len
        if max_len > cfg.context_length:
            raise ValueError(
                f"a KV cache of {max_len} positions does not fit the model's context_length "
                f"{cfg.context_length}"
            )
        weight = model.tok_emb.weight
        dtype = dtype or weight.dtype
        if dtype != weight.dtype and not decode_weights:
            raise ValueError(f"a {dtype} KV cache for {weight.dtype} weights needs decode_weights=True")
        weights = decoding_weights(model, dtype) if decode_weights else None
        return cls(n_layers=cfg.n_layers, batch_size=batch_size, n_heads=cfg.n_heads, head_dim=cfg.head_dim,
                   max_len=max_len, device=weight.device, dtype=dtype, weights=weights)

    def linear(self, module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """`module(x)` as this cache's generation computes it (its decoding weights, if any)."""
        return module(x) if self.weights is None else self.weights.linear(module, x)

    @property
    def batch_size(self) -> int:
        return self.keys.shape[1]

    def reset(self) -> None:
        """Forget every position (the buffers are reused, not reallocated)."""
        self.length = 0


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in: int, d_out: int, context_length: int, dropout: float,
                 num_heads: int, qkv_bias: bool = False):
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError("d_out must be divisible by num_heads")
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = Dropout(dropout)
        # Kept so state dicts match the book's key for key (the book stores a float mask; bool
        # is a quarter of the size and loads either way). The fused kernel takes the causal mask
        # from `is_causal=True`; Fast mode's written-out attention reads this one.
        self.register_buffer(
            "mask", torch.triu(torch.ones(context_length, context_length, dtype=torch.bool), diagonal=1)
        )

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor, int, KVCache] | None = None
                ) -> torch.Tensor:
        if kv is not None:
            return self._forward_cached(x, *kv)
        b, num_tokens, _ = x.shape
        queries = self._split_heads(self.W_query(x))
        keys = self._split_heads(self.W_key(x))
        values = self._split_heads(self.W_value(x))
        p = self.dropout.p if self.training else 0.0
        # Fast mode on a CPU, attention weights (B, H, T, T) large enough: fast_dropout.py's mask.
        if p > 0.0 and fast_masks(x, b * self.num_heads * num_tokens * num_tokens):
            context = causal_attention(queries, keys, values, p, self.mask[:num_tokens, :num_tokens])
        else:
            # With dropout active the math kernel draws one Bernoulli mask over (B, H, T, T),
            # the same draw the book's `self.dropout(attn_weights)` makes.
            context = F.scaled_dot_product_attention(queries, keys, values, is_causal=True, dropout_p=p)
        context = context.transpose(1, 2).reshape(b, num_tokens, self.d_out)
        return self.out_proj(context)

    def _forward_cached(self, x: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
                        start: int, cache: KVCache) -> torch.Tensor:
        """x holds positions start..end-1; the cache (B, H, L, hd) holds 0..start-1 already.
        Products go through `cache.linear` (its decoding weights); the result is in their dtype."""
        b, num_tokens, _ = x.shape
        end = start + num_tokens
        queries = self._split_heads(cache.linear(self.W_query, x))
        # Written in place into the preallocated buffers: no reallocation per token.
        key_cache[:, :, start:end] = self._split_heads(cache.linear(self.W_key, x))
        value_cache[:, :, start:end] = self._split_heads(cache.linear(self.W_value, x))
        keys, values = key_cache[:, :, :end], value_cache[:, :, :end]  # (B, H, end, hd)
        if start == 0:  # prefill: plain causal attention over the new tokens
            context = F.scaled_dot_product_attention(queries, keys, values, is_causal=num_tokens > 1)
        elif num_tokens == 1:  # one new token sees every cached position: no mask needed
            context = F.scaled_dot_product_attention(queries, keys, values)
        else:  # several new tokens after a prefix: query i sees positions 0..start+i
            mask = torch.ones(num_tokens, end, dtype=torch.bool, device=x.device).tril(diagonal=start)
            context = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)
        context = context.transpose(1, 2).reshape(b, num_tokens, self.d_out)
        return cache.linear(self.out_proj, context)


class LayerNorm(nn.Module):
    def __init__(self, emb_dim: int):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Biased variance, eps inside the sqrt: exactly the book's formula, one fused kernel.
        return F.layer_norm(x, self.scale.shape, self.scale, self.shift, self.eps)


class GELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The book's 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))) in one kernel.
        return F.gelu(x, approximate="tanh")


class FeedForward(nn.Module):
    def __init__(self, cfg: GPTConfig | Mapping[str, Any]):
        super().__init__()
        cfg = as_config(cfg)
        self.layers = nn.Sequential(
            nn.Linear(cfg.emb_dim, 4 * cfg.emb_dim),
            GELU(),
            nn.Linear(4 * cfg.emb_dim, cfg.emb_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg: GPTConfig | Mapping[str, Any]):
        super().__init__()
        cfg = as_config(cfg)
        self.att = MultiHeadAttention(
            d_in=cfg.emb_dim, d_out=cfg.emb_dim, context_length=cfg.context_length,
            num_heads=cfg.n_heads, dropout=cfg.drop_rate, qkv_bias=cfg.qkv_bias,
        )
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg.emb_dim)
        self.norm2 = LayerNorm(cfg.emb_dim)
        self.drop_shortcut = Dropout(cfg.drop_rate)

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor, int, KVCache] | None = None
                ) -> torch.Tensor:
        if kv is not None:  # generation: no dropout, whatever the module's mode
            # The residual stream and the norms keep the weights' dtype (float32); the products
            # take the cache's (bfloat16 in a bfloat16 generation) and are added back to it.
            linear, (fc1, gelu, fc2) = kv[3].linear, self.ff.layers
            x = x + self.att(self.norm1(x), kv)
            return x + linear(fc2, gelu(linear(fc1, self.norm2(x))))
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))
        return x


TIED_EMBEDDING_STD = 0.02  # GPT-2's initialisation of its shared token embedding


class GPTModel(nn.Module):
    def __init__(self, cfg: GPTConfig | Mapping[str, Any]):
        super().__init__()
        cfg = as_config(cfg)
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)
        self.drop_emb = Dropout(cfg.drop_rate)
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.final_norm = LayerNorm(cfg.emb_dim)
        # Built (and its random init drawn) even when tied, so the RNG stream stays the book's.
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            # The book's N(0, 1) embedding as the head makes the first logits ~sqrt(emb_dim)
            # wide (first loss ~85, not ln(vocab) ~ 10.8). Shared, it takes GPT-2's std 0.02:
            # the same draw scaled, so no random number is used and the stream stays the book's.
            with torch.no_grad():
                self.tok_emb.weight.mul_(TIED_EMBEDDING_STD)
            self.out_head.weight = self.tok_emb.weight

    def forward(self, in_idx: torch.Tensor) -> torch.Tensor:
        return self.out_head(self.hidden_states(in_idx))  # (B, T, vocab)

    def hidden_states(self, in_idx: torch.Tensor, *, kv_cache: KVCache | None = None) -> torch.Tensor:
        """Everything but the output head: (B, T) ids -> (B, T, d) after `final_norm`.
        The training loss uses it to fuse the head with the cross-entropy.

        With `kv_cache`, `in_idx` holds the tokens that follow the `kv_cache.length` cached
        ones (positions continue from there) and their keys and values are appended; dropout
        is never applied on this path (it is for generation and scoring)."""
        if kv_cache is not None:
            return self._hidden_states_cached(in_idx, kv_cache)
        _, seq_len = in_idx.shape  # (B, T)
        if seq_len > self.cfg.context_length:
            raise ValueError(
                f"input has {seq_len} tokens but the model's context_length is "
                f"{self.cfg.context_length}; crop it to the last {self.cfg.context_length}"
            )
        tok_embeds = self.tok_emb(in_idx)  # (B, T, d)
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))  # (T, d)
        x = self.drop_emb(tok_embeds + pos_embeds)
        x = self.trf_blocks(x)
        return self.final_norm(x)

    def _hidden_states_cached(self, in_idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        batch_size, seq_len = in_idx.shape
        start = cache.length
        end = start + seq_len
        if end > cache.max_len or end > self.cfg.context_length:
            raise ValueError(
                f"the KV cache holds {start} tokens; {seq_len} more exceed its "
                f"{min(cache.max_len, self.cfg.context_length)} positions"
            )
        if batch_size != cache.batch_size:
            raise ValueError(f"the KV cache was made for batch size {cache.batch_size}, got {batch_size}")
        # A slice of the table instead of an index lookup: positions are contiguous.
        x = self.tok_emb(in_idx) + self.pos_emb.weight[start:end]  # (B, T, d)
        for i, block in enumerate(self.trf_blocks):
            x = block(x, (cache.keys[i], cache.values[i], start, cache))
        cache.length = end
        return self.final_norm(x)

    def new_kv_cache(self, batch_size: int, max_len: int | None = None, *, dtype: torch.dtype | None = None,
                     decode_weights: bool = False) -> KVCache:
        """An empty cache for `next_token_logits` (up to the context length by default); see
        `KVCache.for_model` for `dtype` and `decode_weights`."""
        return KVCache.for_model(self, batch_size, max_len, dtype=dtype, decode_weights=decode_weights)

    def next_token_logits(self, idx: torch.Tensor, *, kv_cache: KVCache | None = None,
                          all_positions: bool = False) -> torch.Tensor:
        """Generation's and scoring's forward: the logits of the token after the last of `idx`,
        (B, vocab), or after each of its tokens, (B, T, vocab), with `all_positions`.

        Through a KV cache and never with dropout, whatever the module's mode. With `kv_cache`,
        `idx` holds the tokens that follow its `kv_cache.length` cached ones and their keys and
        values are appended; without one, a cache for `idx` alone is made and dropped. The
        output head runs on the positions asked for only."""
        if kv_cache is None:
            kv_cache = self.new_kv_cache(idx.shape[0], max_len=idx.shape[1])
        hidden = self.hidden_states(idx, kv_cache=kv_cache)  # (B, T, d)
        return kv_cache.linear(self.out_head, hidden if all_positions else hidden[:, -1, :])

    @property
    def device(self) -> torch.device:
        return self.tok_emb.weight.device

    def num_parameters(self) -> int:
        """`sum(p.numel() for p in model.parameters())`, as the book counts (tied counted once)."""
        return sum(p.numel() for p in self.parameters())


def load_book_state_dict(model: GPTModel, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load a state dict saved by the book's code (or ours) strictly.

    A tied model accepts a state dict with or without a separate `out_head.weight`; when
    present it must equal the token embedding, because a tied model cannot hold both.
    """
    state_dict = dict(state_dict)
    if model.cfg.tie_weights and "out_head.weight" in state_dict and "tok_emb.weight" in state_dict:
        if not torch.equal(state_dict["out_head.weight"], state_dict["tok_emb.weight"]):
            raise ValueError(
                "this checkpoint has an output head separate from its token embedding; "
                "load it into a model built with tie_weights=False"
            )
    elif model.cfg.tie_weights and "tok_emb.weight" in state_dict:
        state_dict["out_head.weight"] = state_dict["tok_emb.weight"]
    # Checked before anything is copied: load_state_dict copies every tensor that fits
    # before it complains about the others, which would leave the model half-loaded.
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
        raise ValueError(f"this state dict does not fit the model: {'; '.join(parts)}")
    wrong = [f"{k} {tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__} "
             f"(model has {tuple(expected[k].shape)})"
             for k, v in state_dict.items()
             if not isinstance(v, torch.Tensor) or v.shape != expected[k].shape]
    if wrong:
        raise ValueError(f"this state dict has tensors of the wrong shape: {', '.join(wrong[:5])}")
    model.load_state_dict(state_dict, strict=True)


def crop_context(model: GPTModel, context_length: int) -> GPTModel:
    """A trainable copy of `model` that sees at most `context_length` positions (its first
    rows of `pos_emb`): GPT-2's 1024-token context costs minutes a step on a CPU; the same
    weights with 64 positions train in seconds and read the same text the same way."""
    config = model.cfg.replace(context_length=context_length)
    state = {}
    for name, tensor in model.state_dict().items():
        if name == "pos_emb.weight":
            tensor = tensor[:context_length]
        elif name.endswith("att.mask"):
            tensor = tensor[:context_length, :context_length]
        state[name] = tensor
    with torch.device("meta"):
        copy = GPTModel(config)  # no random init: every tensor comes from `model`
    copy = copy.to_empty(device=model.device)
    if config.tie_weights:  # to_empty gives every parameter its own storage: tie again
        copy.out_head.weight = copy.tok_emb.weight
    load_book_state_dict(copy, state)
    return copy.requires_grad_(True)


# --- the model factory: every kind of model this project trains ---------------------------
ModelConfig = GPTConfig | BigramConfig


def config_from_dict(d: Mapping[str, Any]) -> ModelConfig:
    """A stored model config back to its class: a bigram's says `model_type: "bigram"`;
    anything else is the book's GPT dict."""
    if not isinstance(d, Mapping):
        raise ValueError(f"a model config is a dict, got {type(d).__name__}")
    if d.get("model_type") == BIGRAM:
        return BigramConfig.from_dict(d)
    return GPTConfig.from_dict(d)


def build_model(config: ModelConfig) -> nn.Module:
    """A fresh model of the config's kind, initialised from torch's global RNG."""
    if isinstance(config, BigramConfig):
        return BigramLanguageModel(config)
    if isinstance(config, GPTConfig):
        return GPTModel(config)
    raise ValueError(f"not a model config: {type(config).__name__}")
