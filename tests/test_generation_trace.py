"""Generation inspected token by token: each traced token's rank and stage probabilities are
those of the logits it was drawn from (checked against a plain forward without the cache),
and tracing changes no generated token."""
from __future__ import annotations

import pytest
import torch

from gpt_core.config import GPTConfig
from gpt_core.generate import generate, stream_generate
from gpt_core.generation_trace import GenerationTrace
from gpt_core.model import GPTModel
from gpt_core.plots import candidates_figure
from gpt_core.sampling import STAGES, filter_stages
from gpt_core.tokenizers import CharTokenizer

TEXT = "every effort moves you forward, inch by inch, toward the light."


@pytest.fixture(scope="module")
def tok() -> CharTokenizer:
    return CharTokenizer.from_text(TEXT)


@pytest.fixture(scope="module")
def model(tok) -> GPTModel:
    torch.manual_seed(1)
    return GPTModel(GPTConfig(vocab_size=tok.n_vocab, context_length=16, emb_dim=32, n_heads=2, n_layers=2)).eval()


OPTIONS = dict(temperature=0.9, top_k=6, top_p=0.8)


def test_each_token_s_stages_and_rank_are_those_it_was_drawn_from(model, tok):
    prompt = torch.tensor([tok.encode("every effort")])
    trace = GenerationTrace(tok, **OPTIONS, top_n=5)
    out = generate(model, prompt, 10, seed=11, on_step=trace.record, **OPTIONS)
    plain = generate(model, prompt, 10, seed=11, **OPTIONS)
    assert torch.equal(out, plain)  # tracing draws nothing and changes nothing
    new = out[0, prompt.shape[1]:].tolist()
    assert [t.token_id for t in trace.tokens] == new
    for i, traced in enumerate(trace.tokens):
        with torch.no_grad():  # the window this token was drawn after, through the plain forward
            logits = model(out[:, max(0, prompt.shape[1] + i - 16):prompt.shape[1] + i])[0, -1]
        stages = filter_stages(logits, **OPTIONS)
        for name in STAGES:
            assert traced.probs[name] == pytest.approx(float(stages[name][traced.token_id]), abs=1e-5)
            assert traced.kept[name] == int((stages[name] > 0).sum())
        assert traced.probs["top_p"] > 0  # it was drawn from what top-p kept
        assert traced.rank == int((logits > logits[traced.token_id]).sum()) + 1
        assert traced.label == tok.token_strings([traced.token_id])[0]
        ids = [c[0] for c in traced.candidates]
        assert ids == torch.topk(logits, 5).indices.tolist()
        assert traced.candidates[0][2]["softmax"] == pytest.approx(float(stages["softmax"][ids[0]]), abs=1e-5)
        assert traced.vocab_size == tok.n_vocab


def test_greedy_tokens_are_always_rank_one_and_streaming_traces_too(model, tok):
    trace = GenerationTrace(tok, temperature=0.0)
    text = "".join(stream_generate(model, tok, "toward", 8, on_step=trace))
    assert len(trace.tokens) == 8 and "".join(t.label for t in trace.tokens) == text
    assert all(t.rank == 1 and t.probs["top_p"] == 1.0 for t in trace.tokens)
    assert trace.settings == {"temperature": 0.0, "top_k": None, "top_p": None}


@pytest.mark.parametrize("kwargs, says", [
    (dict(temperature=-1), "temperature"), (dict(top_k=0), "top_k"), (dict(top_p=1.5), "top_p"),
    (dict(top_n=0), "top_n"),
])
def test_bad_settings_are_refused(tok, kwargs, says):
    with pytest.raises(ValueError, match=says):
        GenerationTrace(tok, **kwargs)


def test_the_drawn_token_is_marked_on_its_chart():
    fig = candidates_figure(["a", "b", "c"], {"softmax": [0.5, 0.3, 0.2]}, highlight=1, title="Token 3")
    assert list(fig.data[0].y) == ["a", "<b>▶ b</b>", "c"]
    assert fig.layout.title.text.startswith("Token 3")
