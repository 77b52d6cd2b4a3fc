"""generate(), streaming, the next-token view and scoring, against the book's code
(`llms_from_scratch.ch04/ch05`) and transformers' top-p warper. KV-cache equality with the
book's generate past the window is in test_kv_cache.py."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from llms_from_scratch.ch05 import generate as book_generate
from transformers.generation.logits_process import TopPLogitsWarper

from gpt_core.config import GPTConfig
from gpt_core.generate import (TextDecoder, generate, next_token_distribution, score_text, stream_generate)
from gpt_core.model import GPTModel
from gpt_core.tokenizers import CharTokenizer, GPT2Tokenizer

from conftest import ASSETS

PROMPT = torch.tensor([[6109, 3626, 6100, 345]])  # "Every effort moves you"
CHINESE = "子曰：学而时习之，不亦说乎？有朋自远方来，不亦乐乎？🙂👍🏽"


pytestmark = pytest.mark.usefixtures("one_thread_per_module")


@pytest.fixture(scope="module")
def tokenizer() -> GPT2Tokenizer:
    return GPT2Tokenizer()


def memorizing_model(ids: list[int], vocab_size: int = 50257) -> GPTModel:
    """A real GPTModel whose weights are set by hand so that, at position p, it predicts ids[p+1]
    with near certainty: the blocks add nothing (zero output projections), the embedding of
    position p is a scaled unit vector, and the head maps its normalised form to ids[p+1]."""
    d = 64
    assert len(ids) < d
    model = GPTModel(GPTConfig(vocab_size=vocab_size, context_length=d, emb_dim=d, n_heads=2, n_layers=1,
                               drop_rate=0.0)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for norm in (model.final_norm, model.trf_blocks[0].norm1, model.trf_blocks[0].norm2):
            norm.scale.fill_(1.0)
        model.pos_emb.weight.copy_(10 * torch.eye(d))
        normalised = F.layer_norm(model.pos_emb.weight, (d,))
        for p in range(len(ids) - 1):
            model.out_head.weight[ids[p + 1]] += 10 * normalised[p]
    return model


# --- semantics of the book's generate ---------------------------------------------------------
def test_max_new_tokens_zero_returns_the_prompt(pair):
    ours, _ = pair
    out = generate(ours, PROMPT, 0)
    assert torch.equal(out, PROMPT) and out is not PROMPT


def test_result_is_an_ordinary_tensor(pair):
    """Generated ids can be fed to a model being trained (not an inference-mode tensor)."""
    ours, _ = pair
    out = generate(ours, PROMPT, 3)
    assert not out.is_inference()
    ours.tok_emb(out).sum().backward()
    assert ours.tok_emb.weight.grad is not None
    ours.zero_grad(set_to_none=True)


def _first_new_token_not_seen_before(row: torch.Tensor, start: int) -> tuple[int, int]:
    for pos in range(start + 2, row.shape[0]):
        if int(row[pos]) not in row[start:pos].tolist():
            return pos, int(row[pos])
    raise AssertionError("no suitable end-of-text candidate")


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_eos_stops_like_the_book(pair, temperature):
    ours, book = pair
    torch.manual_seed(3)
    free = generate(ours, PROMPT, 12, temperature=temperature)
    pos, eos = _first_new_token_not_seen_before(free[0], PROMPT.shape[1])
    torch.manual_seed(3)
    expected = book_generate(book, PROMPT, 12, 16, temperature=temperature, eos_id=eos)
    torch.manual_seed(3)
    got = generate(ours, PROMPT, 12, temperature=temperature, eos_id=eos)
    assert torch.equal(got, expected)
    assert torch.equal(got, free[:, :pos])  # stops before its end-of-text token


def test_batch_rows_match_single_rows_and_stop_at_their_own_eos(pair):
    ours, _ = pair
    prompts = torch.tensor([[6109, 3626, 6100, 345], [40, 1107, 588, 11311]])
    free = generate(ours, prompts, 12)
    for i in range(2):
        assert torch.equal(free[i:i + 1], generate(ours, prompts[i:i + 1], 12))
    # An end-of-text token the first row produces and the second never does.
    row0, row1 = free[0].tolist(), free[1].tolist()
    pos, eos = next((p, row0[p]) for p in range(6, 16) if row0[p] not in row0[4:p] and row0[p] not in row1[4:])
    got = generate(ours, prompts, 12, eos_id=eos)
    assert got.shape == free.shape
    assert torch.equal(got[1], free[1])
    assert torch.equal(got[0, :pos], free[0, :pos])
    assert (got[0, pos:] == eos).all()  # padded with end-of-text after it finished
    # When every row has finished, generation stops there.
    both = next(t for t in row1[4:] if t not in row0[4:])
    pos1 = row1.index(both, 4)
    got = generate(ours, prompts, 12, eos_id=both)
    assert torch.equal(got, generate(ours, prompts, 12, eos_id=both, use_cache=False))
    assert torch.equal(got[0], free[0, :got.shape[1]]) and got.shape[1] == 16
    assert (got[1, pos1:] == both).all()


def test_top_p_matches_a_reference_loop(pair):
    """The book's generate with transformers' top-p warper after its temperature step."""
    ours, book = pair
    warper = TopPLogitsWarper(top_p=0.6)
    torch.manual_seed(11)
    idx = PROMPT
    for _ in range(40):
        with torch.no_grad():
            logits = book(idx[:, -16:])[:, -1, :]
        top_logits, _ = torch.topk(logits, 200)
        logits = torch.where(logits < top_logits[:, -1], torch.tensor(float("-inf")), logits)
        logits = warper(None, logits / 0.8)
        idx = torch.cat((idx, torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1)), dim=1)
    torch.manual_seed(11)
    assert torch.equal(generate(ours, PROMPT, 40, 16, temperature=0.8, top_k=200, top_p=0.6), idx)


def test_top_p_one_is_plain_sampling_and_tiny_top_p_is_greedy(pair):
    ours, _ = pair
    assert torch.equal(generate(ours, PROMPT, 20, temperature=1.0, top_p=1.0, seed=4),
                       generate(ours, PROMPT, 20, temperature=1.0, seed=4))
    assert torch.equal(generate(ours, PROMPT, 20, temperature=1.0, top_p=1e-6, seed=4), generate(ours, PROMPT, 20))


def test_seed_and_generator_reproducibility(pair):
    ours, _ = pair
    a = generate(ours, PROMPT, 20, temperature=1.0, seed=5)
    assert torch.equal(a, generate(ours, PROMPT, 20, temperature=1.0, seed=5))
    assert not torch.equal(a, generate(ours, PROMPT, 20, temperature=1.0, seed=6))
    g = torch.Generator().manual_seed(5)
    assert torch.equal(generate(ours, PROMPT, 20, temperature=1.0, generator=g), a)
    # The generator moved on: a second call continues its stream.
    assert not torch.equal(generate(ours, PROMPT, 20, temperature=1.0, generator=g), a)


def test_top_k_larger_than_the_vocabulary_is_clamped(pair):
    ours, _ = pair
    assert torch.equal(generate(ours, PROMPT, 10, temperature=1.0, top_k=10 ** 6, seed=2),
                       generate(ours, PROMPT, 10, temperature=1.0, seed=2))


def test_works_with_the_books_model_too(pair):
    ours, book = pair
    torch.manual_seed(8)
    expected = book_generate(book, PROMPT, 20, 16, temperature=1.2, top_k=40)
    torch.manual_seed(8)
    assert torch.equal(generate(book, PROMPT, 20, 16, temperature=1.2, top_k=40), expected)


@pytest.mark.parametrize("kwargs,match", [
    ({"max_new_tokens": -1}, "max_new_tokens"),
    ({"max_new_tokens": 2.0}, "max_new_tokens"),
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": 2.5}, "top_k"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"eos_id": 50257}, "eos_id"),
    ({"eos_id": -1}, "eos_id"),
    ({"context_size": 17}, "context_length"),
    ({"context_size": 0}, "context_size"),
    ({"seed": 1, "generator": torch.Generator()}, "not both"),
    ({"seed": "1"}, "seed"),
    ({"generator": 3}, "generator"),
    ({"idx": PROMPT.float()}, "torch.long"),
    ({"idx": PROMPT[0]}, "2-D"),
    ({"idx": PROMPT[:, :0]}, "at least one"),
    ({"idx": torch.tensor([[50257]])}, "vocabulary"),
])
def test_bad_arguments_are_clear_errors(pair, kwargs, match):
    ours, _ = pair
    args = {"idx": PROMPT, "max_new_tokens": 3, **kwargs}
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        generate(ours, **args)
    assert all(torch.equal(v, ours.state_dict()[k]) for k, v in before.items())


# --- streaming --------------------------------------------------------------------------------
def test_decoding_token_by_token_never_breaks_a_chinese_character(tokenizer):
    text = (ASSETS / "lunyu.txt").read_text(encoding="utf-8")[:3000] + "🙂👍🏽"
    ids = tokenizer.encode(text)
    # Tokens alone do split characters (else this test would prove nothing).
    assert sum("\ufffd" in tokenizer.decode([i]) for i in ids) > 100
    decoder = TextDecoder(tokenizer)
    pieces = [decoder.push([i]) for i in ids] + [decoder.flush()]
    assert not any("\ufffd" in piece for piece in pieces)
    assert "".join(pieces) == text


def test_decoder_shows_truly_broken_bytes_as_decode_does(tokenizer):
    ids = tokenizer.encode("学")[:1] + tokenizer.encode(" ok")  # half a character, then text
    decoder = TextDecoder(tokenizer)
    text = "".join(decoder.push([i]) for i in ids) + decoder.flush()
    assert text == tokenizer.decode(ids) and "\ufffd" in text


def test_stream_generate_yields_whole_characters(tokenizer):
    ids = tokenizer.encode(CHINESE) + [tokenizer.eot_id]
    model = memorizing_model(ids)
    assert torch.equal(generate(model, torch.tensor([ids[:1]]), 60, eos_id=tokenizer.eot_id),
                       torch.tensor([ids[:-1]]))  # it has learnt the text
    for options in ({}, {"temperature": 1.0, "top_k": 5, "seed": 1}):
        pieces = list(stream_generate(model, tokenizer, ids[:1], 60, eos_id=tokenizer.eot_id, **options))
        assert len(pieces) > 10 and all(pieces)
        assert not any("\ufffd" in piece for piece in pieces)
        assert "".join(pieces) == CHINESE[1:]


def test_stream_generate_equals_generate(pair, tokenizer):
    ours, _ = pair
    out = generate(ours, PROMPT, 40, temperature=1.5, top_p=0.95, seed=9)
    pieces = list(stream_generate(ours, tokenizer, "Every effort moves you", 40, temperature=1.5, top_p=0.95,
                                  seed=9))
    assert "".join(pieces) == tokenizer.decode(out[0, 4:].tolist())


def test_stream_generate_with_characters():
    text = CHINESE * 2
    chars = CharTokenizer.from_text(text)
    ids = chars.encode(CHINESE)
    model = memorizing_model(ids, vocab_size=chars.n_vocab)
    pieces = list(stream_generate(model, chars, CHINESE[:2], len(ids) - 2))
    assert pieces == list(CHINESE[2:])


def test_stream_generate_checks_arguments_at_the_call(pair, tokenizer):
    ours, _ = pair
    with pytest.raises(ValueError, match="empty"):
        stream_generate(ours, tokenizer, "", 5)
    with pytest.raises(ValueError, match="single prompt"):
        stream_generate(ours, tokenizer, torch.zeros(2, 3, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="top_p"):
        stream_generate(ours, tokenizer, "Hi", 5, top_p=2.0)


# --- the next token, opened up ----------------------------------------------------------------
def test_next_token_distribution_against_the_books_model(pair, tokenizer):
    ours, book = pair
    with torch.no_grad():
        logits = book(PROMPT)[0, -1]
    dist = next_token_distribution(ours, PROMPT, temperature=0.7, top_k=5, top_p=0.9, top_n=8, tokenizer=tokenizer)
    expected_ids = torch.topk(logits, 8).indices.tolist()
    assert [c.token_id for c in dist.candidates] == expected_ids
    assert [c.label for c in dist.candidates] == [tokenizer.decode([i]) for i in expected_ids]
    probs = torch.softmax(logits, dim=-1)
    torch.testing.assert_close(torch.tensor([c.probs["softmax"] for c in dist.candidates]), probs[expected_ids])
    # After top-k and temperature: what the book's generate would sample from.
    top = torch.where(logits < torch.topk(logits, 5).values[-1], torch.tensor(float("-inf")), logits)
    sampled_from = torch.softmax(top / 0.7, dim=-1)
    torch.testing.assert_close(torch.tensor([c.probs["temperature"] for c in dist.candidates]),
                               sampled_from[expected_ids])
    assert dist.kept["top_k"] == 5 and 1 <= dist.kept["top_p"] <= 5
    assert all(c.probs["top_k"] == 0 for c in dist.candidates[5:])


def test_next_token_distribution_greedy(pair):
    ours, _ = pair
    dist = next_token_distribution(ours, PROMPT, temperature=0.0)
    assert dist.candidates[0].probs["top_p"] == 1.0
    assert dist.candidates[0].token_id == int(generate(ours, PROMPT, 1)[0, -1])
    with pytest.raises(ValueError, match="temperature"):
        next_token_distribution(ours, PROMPT, temperature=-1)
    with pytest.raises(ValueError, match="context_size"):
        next_token_distribution(ours, PROMPT, context_size=17)


# --- scoring ------------------------------------------------------------------------------------
def test_score_text_follows_the_books_steps(pair):
    ours, book = pair
    # The book's batch: "every effort moves" -> " effort moves you", "I really like" -> " really like chocolate".
    inputs = torch.tensor([[16833, 3626, 6100], [40, 1107, 588]])
    targets = torch.tensor([[3626, 6100, 345], [1107, 588, 11311]])
    with torch.no_grad():
        logits = book(inputs)
    probas = torch.softmax(logits, dim=-1)
    target_probas_1 = probas[0, [0, 1, 2], targets[0]]
    target_probas_2 = probas[1, [0, 1, 2], targets[1]]
    log_probas = torch.log(torch.cat((target_probas_1, target_probas_2)))
    neg_avg_log_probas = torch.mean(log_probas) * -1
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())

    score = score_text(ours, torch.cat([inputs, targets[:, -1:]], dim=1))
    assert torch.equal(score.target_ids, targets)
    torch.testing.assert_close(score.target_probs, torch.stack([target_probas_1, target_probas_2]))
    assert score.cross_entropy == pytest.approx(float(neg_avg_log_probas), rel=1e-5)
    assert score.cross_entropy == pytest.approx(float(loss), rel=1e-5)
    assert score.perplexity == pytest.approx(float(torch.exp(loss)), rel=1e-5)


def test_score_long_text_in_windows(pair):
    ours, book = pair
    ids = torch.randint(0, 50257, (40,), generator=torch.Generator().manual_seed(2))
    score = score_text(ours, ids.tolist())
    assert score.target_probs.shape == (1, 39)
    pieces = []
    with torch.no_grad():
        for start in range(0, 39, 16):
            inputs, targets = ids[start:start + 16], ids[start + 1:start + 17]
            inputs = inputs[:len(targets)]
            pieces.append(F.cross_entropy(book(inputs[None])[0], targets, reduction="none"))
    torch.testing.assert_close(score.log_probs[0], -torch.cat(pieces))
    with pytest.raises(ValueError, match="two tokens"):
        score_text(ours, [5])
    with pytest.raises(ValueError, match="vocabulary"):
        score_text(ours, [5, 50300])
