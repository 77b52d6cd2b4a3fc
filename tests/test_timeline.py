"""The training replayed: a frame per evaluation (greedy sample, next-token candidates), the
run's numbers unchanged by it, frames saved in checkpoints and read back (old files too)."""
from __future__ import annotations

import math

import pytest
import torch

from gpt_core.checkpoint import CheckpointError, atomic_torch_save, read_checkpoint
from gpt_core.config import GPTConfig, TrainConfig
from gpt_core.generate import generate, text_to_token_ids
from gpt_core.prepare import prepare_training
from gpt_core.timeline import MAX_FRAMES, Frame, add_frame, capture_frame, check_timeline
from gpt_core.tokenizers import CharTokenizer
from gpt_core.train_events import EvalEvent, event_to_dict

START = "I had"


@pytest.fixture(scope="module")
def corpus(verdict_text) -> tuple[str, CharTokenizer]:
    return verdict_text[:3000], CharTokenizer.from_text(verdict_text[:3000])


def run(corpus, *, timeline: bool):
    """40 steps of a tiny model, evaluating every 10; one thread, so two runs compare bit for bit."""
    text, tok = corpus
    cfg = GPTConfig(vocab_size=tok.n_vocab, context_length=16, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.1)
    config = TrainConfig(num_epochs=1, batch_size=4, eval_freq=10, eval_iter=2, start_context=START,
                         sample_tokens=12, seed=5, max_steps=40, timeline=timeline)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = prepare_training(text, tokenizer=tok, model_config=cfg, config=config)
        return trainer, list(trainer.run())
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def with_timeline(corpus):
    return run(corpus, timeline=True)


def test_the_timeline_changes_no_number_of_the_run(corpus, with_timeline):
    plain, plain_events = run(corpus, timeline=False)
    traced, traced_events = with_timeline
    assert traced.state.train_losses == plain.state.train_losses
    assert traced.state.val_losses == plain.state.val_losses
    assert traced.state.step_losses == plain.state.step_losses
    a, b = plain.model.state_dict(), traced.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Dropout draws after the run come from the same RNG state.
    assert not plain.state.timeline and all(e.frame is None for e in plain_events if isinstance(e, EvalEvent))


def test_one_frame_per_evaluation_with_the_sample_and_candidates(with_timeline):
    trainer, events = with_timeline
    st = trainer.state
    evals = [e for e in events if isinstance(e, EvalEvent)]
    frames = [Frame.from_dict(d) for d in st.timeline]
    assert len(frames) == len(evals) == len(st.eval_steps) == 4
    for frame, event in zip(frames, evals):
        assert event.frame == frame
        assert (frame.step, frame.tokens_seen, frame.train_loss, frame.val_loss) == (
            event.step, event.tokens_seen, event.train_loss, event.val_loss)
        assert len(frame.text) == 12  # characters: one per sampled token
        probs = [p for _, p in frame.candidates]
        assert len(probs) == 8 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
    assert event_to_dict(evals[0])["frame"] == st.timeline[0]


def test_a_frame_is_the_greedy_sample_and_the_softmax_after_the_start_context(with_timeline, corpus):
    model, tok = with_timeline[0].model, corpus[1]
    model.train()
    frame = capture_frame(model, tok, START, step=3, epoch=1, tokens_seen=99, train_loss=2.0, val_loss=2.5,
                          max_new_tokens=20, top_n=5)
    assert model.training  # the mode is given back
    model.eval()
    idx = text_to_token_ids(START, tok)
    expected = tok.decode(generate(model, idx, 20, temperature=0.0, use_cache=False)[0, idx.shape[1]:].tolist())
    assert frame.text == expected
    with torch.no_grad():
        probs = torch.softmax(model(idx)[0, -1], dim=-1)  # the plain forward, no cache
    top, ids = torch.topk(probs, 5)
    assert [t for t, _ in frame.candidates] == tok.token_strings(ids.tolist())
    torch.testing.assert_close(torch.tensor([p for _, p in frame.candidates]), top)
    with pytest.raises(ValueError, match="start context"):
        capture_frame(model, tok, "", step=0, epoch=1, tokens_seen=0, train_loss=1.0, val_loss=1.0)


def test_a_bfloat16_frame_is_the_bfloat16_greedy_sample(with_timeline, corpus):
    model, tok = with_timeline[0].model, corpus[1]
    frame = capture_frame(model, tok, START, step=3, epoch=1, tokens_seen=99, train_loss=2.0, val_loss=2.5,
                          max_new_tokens=20, top_n=5, precision="bfloat16")
    idx = text_to_token_ids(START, tok)
    expected = generate(model, idx, 20, temperature=0.0, precision="bfloat16")
    assert frame.text == tok.decode(expected[0, idx.shape[1]:].tolist())
    assert all(0.0 < p <= 1.0 for _, p in frame.candidates)
    with pytest.raises(ValueError, match="precision must be one of"):
        capture_frame(model, tok, START, step=0, epoch=1, tokens_seen=0, train_loss=1.0, val_loss=1.0,
                      precision="half")


def test_the_timeline_is_saved_in_the_checkpoint_and_comes_back(with_timeline, corpus, tmp_path):
    text = corpus[0]
    trainer = with_timeline[0]
    path = trainer.save_checkpoint(tmp_path / "run.pt")
    ckpt = read_checkpoint(path)
    assert ckpt.trainer_state["timeline"] == trainer.state.timeline
    again = prepare_training(text, config=ckpt.train_config, resume=ckpt)
    assert again.state.timeline == trainer.state.timeline
    assert check_timeline(again.state.timeline)[-1] == Frame.from_dict(trainer.state.timeline[-1])


def test_an_old_checkpoint_without_a_timeline_loads_with_an_empty_one(with_timeline, corpus, tmp_path):
    text = corpus[0]
    path = with_timeline[0].save_checkpoint(tmp_path / "run.pt")
    payload = torch.load(path, weights_only=True)
    del payload["trainer_state"]["timeline"]
    del payload["train_config"]["timeline"]
    atomic_torch_save(payload, tmp_path / "old.pt")
    ckpt = read_checkpoint(tmp_path / "old.pt")
    assert ckpt.train_config.timeline is False
    assert prepare_training(text, config=ckpt.train_config, resume=ckpt).state.timeline == []


@pytest.mark.parametrize("bad, says", [
    ("not a list", "list of frames"),
    ([{"step": 1}], "lacks"),
    ([{"step": 1, "epoch": 1, "tokens_seen": 4, "train_loss": 1.0, "val_loss": 1.0, "text": 5, "candidates": []}],
     "text"),
    ([{"step": 1, "epoch": 1, "tokens_seen": 4, "train_loss": 1.0, "val_loss": 1.0, "text": "a",
       "candidates": [["x", 3.0]]}], "candidates"),
])
def test_a_bad_timeline_in_a_file_is_refused_with_what_is_wrong(with_timeline, tmp_path, bad, says):
    path = with_timeline[0].save_checkpoint(tmp_path / "run.pt")
    payload = torch.load(path, weights_only=True)
    payload["trainer_state"]["timeline"] = bad
    atomic_torch_save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=f"bad.pt: its timeline is not valid: .*{says}"):
        read_checkpoint(tmp_path / "bad.pt")


def test_a_long_timeline_keeps_its_first_and_latest_frames_within_the_bound():
    frames: list[dict] = []
    for step in range(2 * MAX_FRAMES + 5):
        add_frame(frames, Frame(step=step, epoch=1, tokens_seen=step * 10, train_loss=1.0, val_loss=math.nan,
                                text="x", candidates=(("a", 0.5),)))
        assert len(frames) <= MAX_FRAMES
    steps = [f["step"] for f in frames]
    assert steps[0] == 0 and steps[-1] == 2 * MAX_FRAMES + 4 and steps == sorted(steps)
    assert len(frames) > MAX_FRAMES // 4  # thinned, not emptied
