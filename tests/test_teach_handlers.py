"""The teaching views' handlers called directly: the run replayed (slider, frame, the curve's
marker, kept through a checkpoint), attention opened (trained beside fresh, layers and heads
redrawn from what was computed), and a generation inspected token by token."""
from __future__ import annotations

import pytest
import torch

from gpt_core.attention_maps import attention_weights, head_average
from gpt_core.timeline import Frame
from playground import attention_tab, generate_tab, inspector, replay, train_tab
from playground.i18n import speaking
from playground.limits import Limits
from playground.models import OWN
from playground.options import PRESET_LABELS, START_FROM
from playground.session import Workspace, WorkspaceError
from test_app_handlers import ui_form

OUTPUTS = 9  # the Train tab's own outputs (Stop the last); the replay's slider and frame follow them


@pytest.fixture(scope="module")
def run(verdict_text):
    """(session, every output of a replayed training run): 2 epochs, an evaluation every 4 steps."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ws = Workspace(limits=Limits(max_corpus_chars=100_000))
    ws.set_text(verdict_text[:2000], name="verdict excerpt")
    try:
        outputs = list(replay.with_replay(train_tab.train, follow=True)(ws, ui_form(), START_FROM[0]))
    finally:
        torch.set_num_threads(threads)
    yield ws, outputs
    ws.close()


def frames(ws) -> list[Frame]:
    return [Frame.from_dict(d) for d in ws.own.trainer.state.timeline]


def marker_x(fig) -> list:
    return [t.x[0] for t in fig.data if t.name == "Replay"]


def test_the_run_sends_the_replay_as_its_frames_arrive(run):
    ws, outputs = run
    shown = frames(ws)
    assert len(shown) == len(ws.own.trainer.state.eval_steps) >= 4
    assert all(len(out) == OUTPUTS + 2 for out in outputs)
    sent = [out[OUTPUTS] for out in outputs if isinstance(out[OUTPUTS], dict) and "maximum" in out[OUTPUTS]]
    maxima = [s["maximum"] for s in sent]
    assert maxima == sorted(maxima) and sent[-1]["maximum"] == len(shown) and sent[-1]["value"] == len(shown)
    last_html = [out[OUTPUTS + 1] for out in outputs if isinstance(out[OUTPUTS + 1], str)][-1]
    assert f"Evaluation {len(shown)} of {len(shown)}" in last_html and "<b>I had</b>" in last_html
    # The run's last chart marks the newest evaluation.
    assert marker_x(outputs[-1][2]) == [shown[-1].tokens_seen]


def test_scrubbing_shows_that_evaluation_and_moves_the_marker(run):
    ws, _ = run
    shown = frames(ws)
    first = replay.scrub(ws, 1)
    assert "Evaluation 1 of" in first and f"step {shown[0].step + 1:,}" in first
    assert marker_x(train_tab.loss_chart(ws)) == [shown[0].tokens_seen]
    second = replay.scrub(ws, 2)
    assert "Evaluation 2 of" in second and marker_x(train_tab.loss_chart(ws)) == [shown[1].tokens_seen]
    assert first != second
    replay.scrub(ws, len(shown))  # the end: follows the newest again
    assert ws.ui[replay.AT_KEY] is None
    with pytest.raises(ValueError, match="whole number"):
        replay.scrub(ws, "soon")


def test_a_run_of_random_windows_is_replayed_by_iteration_with_no_epoch(verdict_text):
    """BabyGPT's batching draws random windows: there are iterations, and no epoch to name."""
    ws = Workspace(limits=Limits(max_corpus_chars=100_000))
    ws.set_text(verdict_text[:2000], name="verdict excerpt")
    try:
        for _ in replay.with_replay(train_tab.train, follow=True)(ws, ui_form(iterations=8, eval_freq=4),
                                                                  START_FROM[0]):
            pass
        assert ws.own.trainer.config.batching == "random_windows"
        shown = frames(ws)
        first = replay.scrub(ws, 1)
        assert f"iteration {shown[0].step + 1:,}" in first and "epoch" not in first, first
        labels = [a.text for a in train_tab.loss_chart(ws).layout.annotations]
        assert f"iteration {shown[0].step + 1:,}" in labels, labels
        with speaking("zh-CN"):
            assert f"第 {shown[0].step + 1:,} 次迭代" in replay.scrub(ws, 1)
    finally:
        ws.close()


def test_the_replay_comes_back_with_the_checkpoint(run, verdict_text):
    ws, _ = run
    path = ws.save_checkpoint()
    other = Workspace(limits=Limits(max_corpus_chars=100_000))
    other.set_text(verdict_text[:2000], name="verdict excerpt")
    try:
        before = replay.outputs(other, force=True)[1]
        assert "Each evaluation of a run keeps" in before  # nothing to replay yet
        out = replay.with_replay(train_tab.upload_checkpoint, follow=True)(other, path)
        slider, html = out[-2:]
        assert slider["maximum"] == len(frames(ws)) and other.own.trainer.state.timeline == ws.own.trainer.state.timeline
        assert f"Evaluation {len(frames(ws))} of {len(frames(ws))}" in html
        assert marker_x(out[3]) == [frames(ws)[-1].tokens_seen]  # (after the note, status and progress)
    finally:
        other.close()


def test_a_model_without_its_run_says_there_is_nothing_to_replay(run):
    ws, _ = run
    other = Workspace()
    try:
        other.adopt_model(ws.own.model, ws.own.config, ws.own.tokenizer, "weights only")
        assert "nothing to replay" in replay.outputs(other, force=True)[1]
        assert marker_x(train_tab.loss_chart(other)) == []
    finally:
        other.close()


# --- attention ------------------------------------------------------------------------------
def heat(fig):
    return next(t for t in fig.data if t.name == "attention")


def test_attention_of_the_trained_model_beside_the_fresh_one(run):
    ws, _ = run
    fresh, trained, note, layer, head = attention_tab.show(ws, OWN, "I had always", 1, "Average over heads", True)
    model = ws.own.model
    idx = torch.tensor([ws.own.tokenizer.encode("I had always")])
    maps = attention_weights(model, idx)
    expected = head_average(maps[0])
    z = torch.tensor([[v if v is not None else 0.0 for v in row] for row in heat(trained).z])
    torch.testing.assert_close(z, expected.tril(), atol=2e-3, rtol=0)  # kept in half precision
    assert not torch.allclose(torch.tensor([[v or 0.0 for v in row] for row in heat(fresh).z]), z, atol=1e-3)
    assert layer["maximum"] == 2
    assert head["choices"] == [(h, h) for h in ("Average over heads", "Head 1", "Head 2")]  # shown, sent
    assert "12 tokens" in note and "seed 123" in note
    assert "Your model · Trained" in trained.layout.title.text and "Fresh" in fresh.layout.title.text
    # Another layer and head come from what was computed: no model needed.
    _, second = attention_tab.redraw(ws, 2, "Head 2")
    z2 = torch.tensor([[v if v is not None else 0.0 for v in row] for row in heat(second).z])
    torch.testing.assert_close(z2, maps[1, 1].tril(), atol=2e-3, rtol=0)
    assert "layer 2 of 2 · Head 2" in second.layout.title.text


def test_attention_alone_and_bad_requests(run):
    ws, _ = run
    fresh, trained, note, _, _ = attention_tab.show(ws, OWN, "I had", 2, "Head 1", False)
    assert "Tick" in fresh.layout.annotations[0].text and heat(trained) is not None
    with pytest.raises(ValueError, match="empty"):
        attention_tab.show(ws, OWN, "   ", 1, None, False)
    with pytest.raises(ValueError, match="at most 64"):
        attention_tab.show(ws, OWN, "I had " * 20, 1, None, False)
    with pytest.raises(ValueError, match="Unknown head"):
        attention_tab.redraw(ws, 1, "Head 9")
    with pytest.raises(ValueError, match="Layer"):
        attention_tab.redraw(ws, 3, "Head 1")


def test_a_session_without_a_model_or_with_the_bigram_is_told_why(verdict_text):
    ws = Workspace(limits=Limits(max_corpus_chars=100_000))
    ws.set_text(verdict_text[:2000], name="verdict excerpt")
    try:
        assert "Press" in attention_tab.redraw(ws, 1, None)[0].layout.annotations[0].text
        with pytest.raises(WorkspaceError, match="No model yet"):
            attention_tab.show(ws, None, "I had", 1, None, True)
        form = ui_form(preset=PRESET_LABELS["bigram"], num_epochs=1)
        list(train_tab.train(ws, form, START_FROM[0]))
        with pytest.raises(WorkspaceError, match="no attention"):
            attention_tab.show(ws, OWN, "I had", 1, None, True)
    finally:
        ws.close()


def test_a_fresh_model_larger_than_the_server_builds_is_refused(run):
    ws, _ = run
    limits = ws.limits
    ws.limits = Limits(max_corpus_chars=100_000, max_train_parameters=1_000)
    try:
        with pytest.raises(WorkspaceError, match="Untick the comparison"):
            attention_tab.show(ws, OWN, "I had", 1, None, True)
    finally:
        ws.limits = limits


# --- the inspector ----------------------------------------------------------------------------
def test_a_generated_token_opens_on_what_it_was_drawn_from(run):
    ws, _ = run
    text = list(generate_tab.generate_text(ws, OWN, "I had", 12, 1.0, 5, 0.9, 7, False))[-1]
    update, note, _ = inspector.after_generation(ws)
    shown = update["value"]
    trace = ws.ui[inspector.TRACE_KEY]
    assert shown[0] == ("I had", None) and len(shown) == 13 and "Click" in note
    assert "".join(piece for piece, _ in shown) == text
    assert {cat for _, cat in shown[1:]} <= set(inspector.RANKS)
    summary, fig = inspector.inspect(ws, 3)
    token = trace.tokens[2]
    assert "Token 3 of 12" in summary and f"#{token.rank:,}" in summary
    assert f"{token.probs['top_p']:.1%} (after top-p)" in summary
    bars = fig.data[-1]
    marked = [i for i, label in enumerate(bars.y) if label.startswith("<b>▶")]
    assert len(marked) == 1 and bars.x[marked[0]] == pytest.approx(token.probs["top_p"])
    assert [t.name for t in fig.data] == ["Model (softmax)", "After top-k", "After temperature",
                                          "After top-p: sampled from"]
    assert "prompt" in inspector.inspect(ws, 0)[0]
    with pytest.raises(ValueError, match="Click one of the 12"):
        inspector.inspect(ws, 40)


def test_greedy_tokens_read_as_first_choices_and_filters_off_are_left_out(run):
    ws, _ = run
    list(generate_tab.generate_text(ws, OWN, "I had", 5, 0, 0, 1.0, None, False))
    shown = inspector.after_generation(ws)[0]["value"]
    assert {cat for _, cat in shown[1:]} == {"rank 1"}
    summary, fig = inspector.inspect(ws, 1)
    assert "**#1** choice" in summary and "greedy" in summary
    assert [t.name for t in fig.data] == ["Model (softmax)", "After temperature"]


def test_the_views_speak_the_session_s_language(run):
    ws, _ = run
    with speaking("zh-CN"):
        frame = replay.redraw(ws)[1]
        fresh, trained, note, _, head = attention_tab.show(ws, OWN, "I had", 1, "Head 2", True)
        list(generate_tab.generate_text(ws, OWN, "I had", 4, 0, 0, 1.0, None, False))
        update, hint, _ = inspector.after_generation(ws)
        summary, chart = inspector.inspect(ws, 2)
    assert "次评估" in frame and "训练集损失" in frame and "Evaluation" not in frame
    assert "你的模型 · 训练后" in trained.layout.title.text and "第 2 个注意力头" in trained.layout.title.text
    assert "个词元" in note and "随机种子" in note
    assert head["choices"][2] == ("第 2 个注意力头", "Head 2")  # shown in Chinese, sent in English
    assert set(update["color_map"]) == {"第 1 名", "第 2–5 名", "第 6 名及以后"}
    assert {cat for _, cat in update["value"][1:]} == {"第 1 名"} and "点按" in hint
    assert "第 2 / 4 个词元" in summary and "贪婪解码" in summary and "第 2 / 4 个词元" in chart.layout.title.text
