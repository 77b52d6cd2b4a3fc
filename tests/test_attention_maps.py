"""Attention weights computed by hand: checked against a manual softmax(Q K^T / sqrt(d)) with
the causal mask on the inputs the model's own (SDPA) forward gives each block, against
transformers' output_attentions on the same GPT-2 weights, and the fresh model a run starts from."""
from __future__ import annotations

import json
import math

import pytest
import torch

from gpt2_fixtures import TINY_HPARAMS, hf_model, hf_state_dict, random_arrays
from gpt_core.attention_maps import attention_weights, causal_attention, fresh_model, head_average
from gpt_core.bigram import BigramConfig, BigramLanguageModel
from gpt_core.config import GPTConfig
from gpt_core.model import GPTModel
from gpt_core.plots import attention_figure

CFG = GPTConfig(vocab_size=50, context_length=12, emb_dim=24, n_heads=3, n_layers=3, drop_rate=0.2)
IDS = torch.tensor([[3, 14, 15, 9, 26, 5, 35, 8, 9]])


@pytest.fixture(scope="module")
def model() -> GPTModel:
    torch.manual_seed(0)
    return GPTModel(CFG).eval()


def block_inputs(model: GPTModel, idx: torch.Tensor) -> list[torch.Tensor]:
    """What each block's attention receives in the model's ordinary forward (hooks)."""
    seen: list[torch.Tensor] = []
    hooks = [b.att.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
             for b in model.trf_blocks]
    try:
        with torch.no_grad():
            model(idx)
    finally:
        for h in hooks:
            h.remove()
    return seen


def manual_weights(att, x: torch.Tensor) -> torch.Tensor:
    """The book's masked softmax(Q K^T / sqrt(d_k)), written out: (H, T, T)."""
    t, d = x.shape[1], att.head_dim
    q = (x[0] @ att.W_query.weight.T).view(t, att.num_heads, d).transpose(0, 1)
    k = (x[0] @ att.W_key.weight.T).view(t, att.num_heads, d).transpose(0, 1)
    scores = q @ k.transpose(1, 2) / math.sqrt(d)
    mask = torch.triu(torch.ones(t, t), diagonal=1).bool()
    return torch.softmax(scores.masked_fill(mask, -torch.inf), dim=-1)


def test_every_layer_matches_the_manual_masked_softmax_of_the_model_s_own_forward(model):
    maps = attention_weights(model, IDS)
    assert maps.shape == (3, 3, 9, 9) and maps.dtype == torch.float32
    for layer, x in enumerate(block_inputs(model, IDS)):
        torch.testing.assert_close(maps[layer], manual_weights(model.trf_blocks[layer].att, x))
    assert torch.all(maps.triu(diagonal=1) == 0)  # the causal mask: nothing after the token
    torch.testing.assert_close(maps.sum(-1), torch.ones(3, 3, 9))
    torch.testing.assert_close(maps[:, :, 0, 0], torch.ones(3, 3))  # the first token sees only itself


def test_the_hand_computed_attention_output_is_the_fused_kernel_s(model):
    x = block_inputs(model, IDS)[1]
    _, out = causal_attention(model.trf_blocks[1].att, x)
    with torch.no_grad():
        torch.testing.assert_close(out, model.trf_blocks[1].att(x))  # SDPA, eval mode


def test_some_layers_only_and_the_mode_untouched(model):
    model.train()  # dropout on: the maps must not use it
    try:
        some = attention_weights(model, IDS, layers=[2, 0])
        assert model.training
        torch.testing.assert_close(some, attention_weights(model, IDS, layers=[0, 2]))
    finally:
        model.eval()
    torch.testing.assert_close(some, attention_weights(model, IDS)[[0, 2]])
    avg = head_average(some)
    assert avg.shape == (2, 9, 9)
    torch.testing.assert_close(avg.sum(-1), torch.ones(2, 9))


@pytest.mark.parametrize("kwargs, says", [
    (dict(idx=torch.tensor([[1, 2]]), layers=[3]), "layers must be indices 0..2"),
    (dict(idx=torch.tensor([[1, 2]]), layers=[]), "layers must be"),
    (dict(idx=torch.tensor([[1, 99]])), "outside the model's vocabulary"),
    (dict(idx=torch.arange(13).unsqueeze(0)), "more than the model's context of 12"),
    (dict(idx=torch.tensor([[1, 2], [3, 4]])), "one row"),
    (dict(idx=torch.tensor([[1.0, 2.0]])), "one row"),
])
def test_bad_requests_say_what_is_wrong(model, kwargs, says):
    with pytest.raises(ValueError, match=says):
        attention_weights(model, **kwargs)


def test_the_bigram_baseline_has_no_attention():
    with pytest.raises(ValueError, match="no attention|has none"):
        attention_weights(BigramLanguageModel(BigramConfig(vocab_size=10, context_length=8)), IDS % 10)


def test_fresh_model_is_the_seeded_start_of_a_run_and_leaves_the_rng_alone():
    torch.manual_seed(99)
    before = torch.get_rng_state()
    fresh = fresh_model(CFG, 7)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(7)
    reference = GPTModel(CFG)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), reference.state_dict().values()))
    assert not fresh.training
    with pytest.raises(ValueError, match="seed"):
        fresh_model(CFG, -1)


def test_gpt2_weights_give_transformers_attentions(tmp_path):
    """Same random GPT-2 weights in transformers (eager attention, output_attentions) and ours."""
    from safetensors.numpy import save_file

    from gpt_core.gpt2 import load_gpt2

    hp = TINY_HPARAMS
    arrays = random_arrays(hp, seed=3)
    save_file(hf_state_dict(arrays, hp), str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({
        "vocab_size": hp["n_vocab"], "n_positions": hp["n_ctx"], "n_embd": hp["n_embd"], "n_head": hp["n_head"],
        "n_layer": hp["n_layer"], "activation_function": "gelu_new"}))
    ours, _, _ = load_gpt2(tmp_path)
    reference = hf_model(arrays, hp)
    reference.config._attn_implementation = "eager"  # SDPA in transformers returns no weights
    idx = torch.tensor([[5, 17, 3, 99, 42, 8, 8, 60]])
    with torch.no_grad():
        expected = reference(idx, output_attentions=True).attentions  # per layer (1, H, T, T)
    maps = attention_weights(ours, idx)
    assert len(expected) == maps.shape[0] == hp["n_layer"]
    for layer, weights in enumerate(expected):
        torch.testing.assert_close(maps[layer], weights[0], rtol=1e-4, atol=1e-5)


def test_the_heatmap_draws_weights_and_the_mask_apart(model):
    weights = head_average(attention_weights(model, IDS, layers=[1]))[0]
    tokens = ["a", " b", "\n", "a", "c", "d", "e", "f", "g"]
    fig = attention_figure(tokens, weights.tolist(), title="layer 2, average over heads")
    shown, masked = fig.data
    assert shown.name == "attention" and masked.name == "masked"
    for i in range(9):
        for j in range(9):
            assert (shown.z[i][j] is None) == (j > i) and (masked.z[i][j] is None) == (j <= i)
    assert list(fig.layout.xaxis.ticktext) == ["a", "␣b", "↵", "a", "c", "d", "e", "f", "g"]
    with pytest.raises(ValueError, match="3 x 3 for 3 tokens"):
        attention_figure(tokens[:3], weights.tolist(), title="x")
