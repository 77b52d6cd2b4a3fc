"""The playground's handlers called directly (no server): sessions, data, training live,
stop/resume, generation, evaluation, checkpoints, GPT-2 import, and the error messages.

Models here are tiny (2 layers, 32 wide, context 16, character tokens) so the whole file runs
in well under a minute on two cores; the app's behaviour, not the model's size, is tested.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
import torch

from gpt_core.checkpoint import CheckpointError
from gpt_core.corpus import CorpusError, corpus_stats
from gpt_core.tokenizers import CharTokenizer
from playground.history import RunHistory
from playground.limits import Limits
from playground.server import WorkspaceRegistry
from playground.session import Workspace, WorkspaceError
from playground import data_tab, evaluate_tab, generate_tab, gpt2_tab, inspector, train_tab
from playground.common import SHARED, bind, friendly_message
from playground.i18n import speaking
from playground.files import LINKS
from playground.models import OWN
from playground.options import (DEFAULT_GENERATION_PRECISION, DEFAULT_PRECISION_LABEL, FORM_FIELDS,
                                MODEL_FIELDS, PRESET_LABELS, START_FROM, TRAIN_FIELDS, build_spec)
from threads import torch_threads

CUSTOM = PRESET_LABELS["custom"]
CHARS = "Characters"


def ui_form(**overrides) -> dict:
    """The Train form by field name, as the app passes it to the handlers."""
    values = dict(tokenizer=CHARS, preset=CUSTOM, context_length=16, emb_dim=32, n_heads=2, n_layers=2,
                  drop_rate=0.1, qkv_bias=False, num_epochs=2, batch_size=8, learning_rate=3e-3,
                  weight_decay=0.1, eval_freq=4, eval_iter=2, warmup_steps=0, cosine=False, grad_clip=0,
                  label_smoothing=0, seed=123, start_context="I had", stride=0, iterations=0,
                  precision=DEFAULT_PRECISION_LABEL)
    values.update(overrides)
    assert tuple(values) == FORM_FIELDS
    return values


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def ws(verdict_text) -> Workspace:
    w = Workspace(limits=Limits(max_corpus_chars=100_000))
    w.set_text(verdict_text[:2000], name="verdict excerpt")
    yield w
    w.close()


@pytest.fixture(scope="module")
def trained_ws(verdict_text) -> Workspace:
    """One session with a model trained for an epoch, shared by the tests that only read it."""
    w = Workspace(limits=Limits(max_corpus_chars=100_000))
    w.set_text(verdict_text[:2000], name="verdict excerpt")
    with torch_threads(1):  # module scope: set up before the tests' one_thread
        trained(w, num_epochs=1)
    yield w
    w.close()


def run_to_end(gen) -> list:
    return list(gen)


def trained(ws: Workspace, **overrides) -> list:
    return run_to_end(train_tab.train(ws, ui_form(**overrides), START_FROM[0]))


# --- sessions --------------------------------------------------------------------------------
def test_each_session_gets_its_own_workspace_and_idle_ones_expire():
    now = [0.0]
    reg = WorkspaceRegistry(Limits(max_sessions=3, session_ttl_s=100), clock=lambda: now[0])
    a, b = reg.get("a"), reg.get("b")
    assert a is not b and reg.get("a") is a
    a.set_text("alpha " * 50, name="a")
    assert b.corpus_name != "a"  # one session's text never shows in another
    now[0] = 150.0
    reg.get("c")  # any request sweeps: a and b were idle past their time-to-live
    assert "a" not in reg and "b" not in reg and len(reg) == 1
    assert a.closed and a.own is None


def test_the_registry_is_capped_and_refuses_rather_than_evicting_a_training_session():
    reg = WorkspaceRegistry(Limits(max_sessions=2))
    first, second = reg.get("1"), reg.get("2")
    reg.get("3")  # evicts the least recently used idle session
    assert "1" not in reg and first.closed and not second.closed and len(reg) == 2
    jobs = [reg.get(s).begin_job("train") for s in ("2", "3")]
    with pytest.raises(WorkspaceError, match="full"):
        reg.get("4")
    assert len(reg) == 2 and all(not j.stop.is_set() for j in jobs)


def test_closing_a_session_stops_its_run(ws):
    job = ws.begin_job("train")
    registry = WorkspaceRegistry()
    registry._spaces[ws.id] = ws
    registry.release(ws.id)
    assert job.stop.is_set() and ws.closed
    with pytest.raises(WorkspaceError, match="ended"):
        ws.begin_job("train")


# --- data ------------------------------------------------------------------------------------
def test_bad_texts_get_a_sentence_and_leave_the_corpus_unchanged(ws, tmp_path):
    before = ws.text
    for bad in ("", "   \n ", "x" * 100_001):
        with pytest.raises(CorpusError):
            ws.set_text(bad, name="bad")
    pdf = tmp_path / "paper.txt"
    pdf.write_bytes(b"%PDF-1.7 binary stuff")
    with pytest.raises(CorpusError, match="PDF"):
        data_tab.upload_text(ws, str(pdf), CHARS, 16, 4, 0)
    assert ws.text == before and ws.corpus_name == "verdict excerpt"


def test_an_uploaded_gbk_text_is_read_and_described(ws, tmp_path):
    text = "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？" * 20
    path = tmp_path / "lunyu-gbk.txt"
    path.write_bytes(text.encode("gbk"))
    summary, warnings, tokens, preview = data_tab.upload_text(ws, str(path), CHARS, 16, 4, 0)
    assert ws.text == text and "gb18030" in summary
    stats = corpus_stats(text, CharTokenizer.from_text(text), context_length=16, batch_size=4)
    assert f"| {stats.tokens:,} |" in summary and f"{stats.train_batches:,} of 4 x 16" in summary
    assert tokens.count("<span") >= data_tab.SHOW_TOKENS and preview.startswith("学而时习之")


def test_token_view_escapes_the_text_and_warns_about_a_short_validation_part(ws):
    ws.set_text("<script>alert(1)</script> " * 8, name="hostile")
    summary, warnings, tokens, _ = data_tab.view(ws, "GPT-2 BPE", 64, 2, 0)
    assert "<script" not in tokens and "&lt;" in tokens and "alert" in tokens
    val = ws.stats("gpt2", context_length=64, batch_size=2).val_tokens
    assert "validation part" in warnings and "fewer than one window of 64 + 1" in warnings
    assert "choose a context length of at most" in warnings, warnings
    assert f"has {val:,} tokens" in warnings


# --- options ---------------------------------------------------------------------------------
@pytest.mark.parametrize("override, field", [
    (dict(learning_rate=-1e-3), "Learning rate"), (dict(batch_size=0), "Batch size"),
    (dict(num_epochs=1_000_000), "Epochs"), (dict(n_heads=3), "divisible"),
    (dict(context_length="abc"), "Context length"), (dict(drop_rate=float("nan")), "Dropout"),
    (dict(start_context=""), "Start context"),
])
def test_out_of_range_training_options_are_refused_with_the_field_named(ws, override, field):
    with pytest.raises(ValueError, match=field):
        train_tab._spec(ws, ui_form(**override))
    with pytest.raises(ValueError, match=field):  # the same refusal reaches the API route
        next(train_tab.train(ws, ui_form(**override), START_FROM[0]))
    assert ws.own is None and ws.job is None


def test_presets_fill_the_form_and_the_estimate_names_sizes_and_time(ws):
    values = train_tab.apply_preset(PRESET_LABELS["demo"])
    assert values[:4] == [64, 128, 4, 2] and values[-1] == "GPT-2 BPE"
    text = train_tab.estimate(ws, ui_form())
    spec = build_spec(tokenizer="char", vocab_size=ws.tokenizer("char").n_vocab, preset_label=CUSTOM,
                      **{k: ui_form()[k] for k in (*MODEL_FIELDS, *TRAIN_FIELDS)})
    assert f"({spec.model.num_parameters():,})" in text and "per epoch" in text and "Measured here" in text


def test_the_precision_choice_is_said_before_and_during_the_run(ws):
    from gpt_core.precision import precision_for
    from playground.options import PRECISION_LABELS
    assert "Precision: **Exact (float32)**: float32 was asked for" in train_tab.estimate(ws, ui_form())
    fast = ui_form(precision=PRECISION_LABELS["bfloat16"], num_epochs=1)
    assert "Precision: **Fast (bfloat16)**: bfloat16 was asked for" in train_tab.estimate(ws, fast)
    auto = train_tab.estimate(ws, ui_form(precision=PRECISION_LABELS["auto"]))
    assert precision_for("auto", "cpu").reason in auto  # which one auto took here, and why
    with pytest.raises(ValueError, match="Unknown precision"):
        train_tab._spec(ws, ui_form(precision="Half"))
    updates = trained(ws, precision=PRECISION_LABELS["bfloat16"], num_epochs=1)
    assert ws.own.trainer.config.precision == "bfloat16"
    running = [u for u in updates if str(u[0]).startswith("Training ")]
    assert running and "Precision: **Fast (bfloat16)**" in running[-1][0]
    assert "of this machine's bfloat16 peak" in updates[-1][3]  # metrics: achieved FLOP/s and share
    assert updates[-1][0].startswith("Done") and "in Fast (bfloat16)." in updates[-1][0]  # still said at the end


# --- training --------------------------------------------------------------------------------
def test_training_streams_the_chart_as_it_learns(ws):
    updates = trained(ws)
    status, progress, fig, metrics, samples, download, train_btn, resume_btn, stop_btn = updates[-1]
    trainer = ws.own.trainer
    st = trainer.state
    assert st.step + 1 == trainer.total_steps and "Done" in status and "in Exact (float32)." in status
    # Several chart updates, with more evaluation points as training went on.
    counts = [len(next(t for t in u[2].data if t.name == "Validation loss").x or ()) for u in updates]
    assert len(updates) >= 4 and counts == sorted(counts) and counts[-1] == len(st.val_losses)
    traces = {t.name: t for t in fig.data}
    assert list(traces["Training loss"].y) == pytest.approx(st.train_losses)
    assert list(traces["Validation loss"].x) == st.track_tokens_seen
    assert st.val_losses[-1] < st.val_losses[0] < math.log(ws.tokenizer("char").n_vocab) + 0.5
    assert samples.count("[epoch") == 2 and samples.index("[epoch 2") < samples.index("[epoch 1") and "100%" in progress
    token, name = download["value"].split("/")[-2:]  # the session's download link
    assert LINKS.resolve(token, name) == Path(ws.own.checkpoint_path)
    assert train_btn["interactive"] is True and resume_btn["interactive"] is False
    # Nothing left to stop: Stop is greyed out, no longer red; while it ran it was live.
    assert stop_btn["interactive"] is False and stop_btn["variant"] == "secondary"
    assert all(u[8]["interactive"] is True and u[8]["variant"] == "stop" for u in updates[:-1])
    assert "done" in progress and "ETA" not in progress


def test_stop_then_resume_ends_where_an_uninterrupted_run_ends(ws, verdict_text):
    reference = Workspace(limits=ws.limits)
    reference.set_text(ws.text, name="same")
    trained(reference)
    gen = train_tab.train(ws, ui_form(), START_FROM[0])
    for update in gen:
        if ws.own is not None and ws.own.trainer.state.step >= 5:
            ws.request_stop()  # what the Stop button does when a request arrives mid-run
    status, progress, *_, train_btn, resume_btn, stop_btn = update
    assert "Stopped after step" in status and resume_btn["interactive"] is True and stop_btn["interactive"] is False
    assert "stopped at step" in progress and "ETA" not in progress  # no time left for a run that stopped
    resumed = train_tab.resume(ws)
    first = next(resumed)
    assert first[0].startswith(f"Resuming **custom model** at step {ws.own.trainer.state.step + 2:,}"), first[0]
    assert "Training a new" not in first[0] and first[8]["interactive"] is True
    assert ws.own.trainer.state.step < reference.own.trainer.state.step
    run_to_end(resumed)
    a, b = reference.own.model.state_dict(), ws.own.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert ws.own.trainer.state.val_losses == reference.own.trainer.state.val_losses
    reference.close()


def test_one_run_at_a_time_per_session_and_stop_with_nothing_running(ws):
    gen = train_tab.train(ws, ui_form(num_epochs=50), START_FROM[0])
    next(gen)
    with pytest.raises(WorkspaceError, match="already"):
        next(train_tab.train(ws, ui_form(), START_FROM[0]))
    with pytest.raises(WorkspaceError, match="training"):
        generate_tab.candidates(ws, OWN, "I had", 1.0, 0, 1.0)
    # Stop from another thread (as the server does): the run ends after its current step.
    stopper = threading.Thread(target=lambda: (time.sleep(0.2), train_tab.stop(ws)))
    stopper.start()
    last = list(gen)[-1]
    stopper.join()
    assert "Stopped" in last[0] and ws.job is None
    assert train_tab.stop(ws) == "Nothing is training in this session."


def test_resume_without_a_run_says_what_to_do(ws):
    with pytest.raises(WorkspaceError, match="no run to resume"):
        next(train_tab.resume(ws))


def test_the_run_history_stays_bounded():
    h = RunHistory(max_points=50)
    for i in range(10_000):
        h.add_step(i * 10, 5.0)
    assert len(h.step_tokens) <= 50 and h.step_tokens[-1] >= 9_000 * 10


# --- generation and evaluation ---------------------------------------------------------------
def test_greedy_generation_streams_the_books_tokens(trained_ws):
    from llms_from_scratch.ch05 import generate

    ws = trained_ws
    tok, model = ws.own.tokenizer, ws.own.model.eval()
    pieces = list(generate_tab.generate_text(trained_ws, OWN, "I had", 20, 0, 0, 1.0, None, True))
    ids = torch.tensor([tok.encode("I had")])
    with torch.no_grad():
        book = generate(model, ids, max_new_tokens=20, context_size=16, temperature=0.0)
    assert pieces[-1] == tok.decode(book[0].tolist())
    assert len(pieces) >= 2 and all(b.startswith(a) for a, b in zip(pieces, pieces[1:]))


@pytest.mark.parametrize("args, message", [
    (("I had", 20, 1.0, 0, 7, None), "Top-p"), (("I had", 20, -1, 0, 1.0, None), "Temperature"),
    (("", 20, 1.0, 0, 1.0, None), "prompt is empty"), (("I had", 0, 1.0, 0, 1.0, None), "Max new tokens"),
    (("I had", 10_000, 1.0, 0, 1.0, None), "Max new tokens"),
])
def test_bad_generation_values_are_refused(trained_ws, args, message):
    with pytest.raises(ValueError, match=message):
        list(generate_tab.generate_text(trained_ws, OWN, *args, True))


FAST = "bfloat16"  # the radio sends the name; its label says Fast


def test_generation_says_what_it_did_in_the_precision_asked_for(trained_ws):
    args = (OWN, "I had", 12, 0, 0, 1.0, None, False)
    *_, (html, exact) = generate_tab.generate_view(trained_ws, *args)  # the page's default: Exact
    assert "Generated 12 tokens in" in exact and "tokens/s" in exact and "**Exact (float32)**" in exact
    assert list(generate_tab.generate_text(trained_ws, *args))[-1] == \
        list(generate_tab.generate_text(trained_ws, *args, DEFAULT_GENERATION_PRECISION))[-1]
    *_, (fast_html, fast) = generate_tab.generate_view(trained_ws, *args, FAST)
    assert "Generated 12 tokens in" in fast and "**Fast (bfloat16)**: bfloat16 was asked for" in fast
    assert len(trained_ws.ui[inspector.TRACE_KEY].tokens) == 12  # the inspector sees Fast's own logits
    assert fast_html.count("gen-new") == 1 and "I had" in fast_html
    with speaking("zh-CN"):  # a language switch redraws the line
        html_zh, line_zh = generate_tab.output_in_language(trained_ws)
    assert "生成了 12 个词元" in line_zh and "快速（bfloat16）" in line_zh
    # The API's text in Fast: the prompt and as many new characters (a character model: a token each).
    text = list(generate_tab.generate_text(trained_ws, *args, FAST))[-1]
    assert text.startswith("I had") and len(text) == len("I had") + 12


@pytest.fixture()
def without_kernel(monkeypatch):
    """Fast's one-row kernel turned off, as on a CPU without AVX512_BF16."""
    from gpt_core import bf16_matvec

    monkeypatch.setenv("GPT_CORE_NATIVE", "0")
    bf16_matvec.reset()
    yield
    bf16_matvec.reset()  # looked for again under the restored environment


def test_fast_without_its_kernel_says_so(trained_ws, without_kernel):
    *_, (_, line) = generate_tab.generate_view(trained_ws, OWN, "I had", 5, 0, 0, 1.0, None, False, FAST)
    assert "One-row bfloat16 products: torch.mv (turned off (GPT_CORE_NATIVE=0)): Fast may be no faster" in line
    *_, (_, exact) = generate_tab.generate_view(trained_ws, OWN, "I had", 5, 0, 0, 1.0, None, False)
    assert "torch.mv" not in exact  # Exact never reads bfloat16


@pytest.mark.parametrize("bad", ["half", "Fast (bfloat16)", "BFLOAT16", 3, None, ["bfloat16"], "x" * 10_000])
def test_a_precision_the_page_never_sends_is_refused_and_changes_nothing(trained_ws, bad):
    list(generate_tab.generate_view(trained_ws, OWN, "I had", 5, 0, 0, 1.0, None, False))
    shown, trace = trained_ws.ui[generate_tab.OUTPUT_KEY], trained_ws.ui[inspector.TRACE_KEY]
    with pytest.raises(ValueError, match=r"Unknown precision .*; choose float32 \(Exact\), bfloat16 \(Fast\) or auto") as err:
        next(generate_tab.generate_view(trained_ws, OWN, "Something else", 5, 0, 0, 1.0, None, False, bad))
    assert len(str(err.value)) < 120  # a long value is shortened in the sentence
    assert trained_ws.ui[generate_tab.OUTPUT_KEY] is shown and trained_ws.ui[inspector.TRACE_KEY] is trace
    assert generate_tab.output_in_language(trained_ws)[1].startswith("Generated 5 tokens")


def test_generation_without_a_model_explains_where_to_get_one(ws):
    with pytest.raises(WorkspaceError, match="Train tab"):
        list(generate_tab.generate_text(ws, None, "I had", 5, 1.0, 0, 1.0, 1, True))


def test_candidates_chart_shows_each_sampling_stage(trained_ws):
    fig = generate_tab.candidates(trained_ws, OWN, "I had", 0.5, 5, 0.9)
    stages = {t.name: list(t.x) for t in fig.data}
    assert list(stages) == ["Model (softmax)", "After top-k", "After temperature", "After top-p: sampled from"]
    assert sum(v > 0 for v in stages["After top-k"]) == 5
    assert sum(stages["After top-p: sampled from"]) == pytest.approx(1.0, abs=1e-5)


def test_sampling_lab_is_the_books_toy_example():
    fig = generate_tab.sampling_lab(0.5, 1000, 123)
    probs, counts = fig.data[1], fig.data[2]
    logits = torch.tensor([4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79])
    assert list(probs.x) == ["closer", "every", "effort", "forward", "inches", "moves", "pizza", "toward", "you"]
    torch.testing.assert_close(torch.tensor(probs.y), torch.softmax(logits / 0.5, 0))
    assert sum(counts.y) == 1000 and counts.y[3] == max(counts.y)


def test_evaluate_reports_the_books_loss_and_colours_every_token(trained_ws):
    from llms_from_scratch.ch05 import calc_loss_batch

    ws = trained_ws
    text = ws.text[100:117]  # 17 characters: one window of 16 inputs, 16 targets
    a_md, a_html, b_md, b_html, note = evaluate_tab.evaluate(trained_ws, text, OWN, "")
    ids = torch.tensor([ws.own.tokenizer.encode(text)])
    with torch.no_grad():
        book = calc_loss_batch(ids[:, :-1], ids[:, 1:], ws.own.model.eval(), "cpu").item()
    assert f"**{book:.3f}**" in a_md and f"**{math.exp(book):,.1f}**" in a_md
    assert a_html.count("class='tok-tip'><b>“") == 16 and "bits per character" in note  # 16 scored, with details


# --- checkpoints -----------------------------------------------------------------------------
def test_a_downloaded_checkpoint_uploads_into_another_session(ws, tmp_path):
    trained(ws, num_epochs=1)
    path = ws.save_checkpoint()
    other = Workspace(limits=ws.limits)
    other.set_text(ws.text, name="same text")
    status, shown, progress, *_, train_btn, resume_btn, stop_btn = train_tab.upload_checkpoint(other, path)
    assert "Loaded" in status and shown == status
    # Where its run stands, not "No run yet"; nothing running, nothing to stop.
    step, total = ws.own.trainer.state.step + 1, ws.own.trainer.total_steps
    assert f"loaded at step {step:,}/{total:,}" in progress and "No run yet" not in progress
    assert stop_btn["interactive"] is False and train_btn["interactive"] is True
    a, b = ws.own.model.state_dict(), other.own.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert other.own.tokenizer.to_dict() == ws.own.tokenizer.to_dict()
    other.close()


def test_the_books_model_pth_uploads_and_gives_the_books_logits(ws, tmp_path):
    from llms_from_scratch.ch04 import GPTModel as BookGPT

    # Heads leave no trace in a state dict: GPT-2's 64-wide heads are assumed, as the book's 124M has.
    cfg = {"vocab_size": 50257, "context_length": 16, "emb_dim": 128, "n_heads": 2, "n_layers": 2,
           "drop_rate": 0.0, "qkv_bias": False}
    torch.manual_seed(0)
    book = BookGPT(cfg).eval()
    torch.save(book.state_dict(), tmp_path / "model.pth")
    status, *_ = train_tab.upload_checkpoint(ws, str(tmp_path / "model.pth"))
    assert "book model" in status and "2 attention heads" in status
    x = torch.randint(0, 50257, (1, 16))
    with torch.no_grad():
        torch.testing.assert_close(ws.own.model.eval()(x), book(x))


def test_a_checkpoint_that_would_run_code_is_refused(ws, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pth"
    with open(bad, "wb") as f:
        pickle.dump({"model_state_dict": Exploit()}, f)
    with pytest.raises(CheckpointError, match="refused|not a PyTorch"):
        train_tab.upload_checkpoint(ws, str(bad))
    assert not marker.exists() and ws.own is None


# --- GPT-2 -----------------------------------------------------------------------------------
def test_folder_import_is_limited_to_the_models_folder(ws, monkeypatch, tmp_path):
    monkeypatch.setenv("GPT2_MODELS_DIR", str(tmp_path / "models"))
    for path in ("/etc", str(tmp_path / "models" / ".." / "elsewhere"), "../../etc"):
        with pytest.raises(PermissionError, match="only from"):
            gpt2_tab.import_folder(ws, lambda *a, **k: None, path)
    with pytest.raises(ValueError, match="size"):
        gpt2_tab.download(ws, lambda *a, **k: None, "7B")


def test_an_imported_gpt2_folder_is_shared_and_generates_like_transformers(ws, monkeypatch, tmp_path):
    from safetensors.numpy import save_file

    from gpt2_fixtures import hf_model, hf_state_dict, random_arrays

    hp = {"n_vocab": 50257, "n_ctx": 32, "n_embd": 16, "n_head": 2, "n_layer": 2}
    arrays = random_arrays(hp, seed=1)
    folder = tmp_path / "models" / "tiny"
    folder.mkdir(parents=True)
    save_file(hf_state_dict(arrays, hp), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({
        "vocab_size": 50257, "n_positions": 32, "n_embd": 16, "n_head": 2, "n_layer": 2,
        "activation_function": "gelu_new"}))
    monkeypatch.setenv("GPT2_MODELS_DIR", str(tmp_path / "models"))
    SHARED.clear()
    try:
        status, info = gpt2_tab.import_folder(ws, lambda *a, **k: None, "tiny")
        key = "GPT-2 (tiny)"
        assert key in status and key in info and SHARED.keys() == [key]
        other = Workspace()
        model, cfg, tok = SHARED.get(key)
        assert not any(p.requires_grad for p in model.parameters())  # shared read-only
        text = list(generate_tab.generate_text(other, key, "Every effort moves you", 8, 0, 0, 1.0, None, False))[-1]
        ids = torch.tensor([tok.encode("Every effort moves you")])
        with torch.no_grad():
            hf = hf_model(arrays, hp).generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0)
        assert text == tok.decode(hf[0].tolist())
        # Training from it copies the weights: the shared model is untouched.
        before = {k: v.clone() for k, v in model.state_dict().items()}
        run_to_end(train_tab.train(ws, ui_form(tokenizer="GPT-2 BPE", num_epochs=1, context_length=16),
                                   START_FROM[1]))
        assert ws.own.config.context_length == 16 and ws.own.trainer.state.step >= 0
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        other.close()
    finally:
        SHARED.clear()


# --- errors ----------------------------------------------------------------------------------
def test_handlers_turn_errors_into_readable_messages():
    class Request:
        session_hash = "errors-test"

    def bad_value(ws, x):
        raise ValueError("batch size must be positive")

    def crash(ws):
        raise KeyError("internal")

    def bad_stream(ws):
        yield 1
        raise WorkspaceError("stopped for a reason")

    with pytest.raises(gr.Error) as e:
        bind(bad_value)(Request(), 1)
    assert e.value.message == "Batch size must be positive"
    with pytest.raises(gr.Error) as e:
        bind(crash)(Request())
    assert "Something went wrong (KeyError" in e.value.message and "Traceback" not in e.value.message
    gen = bind(bad_stream)(Request())
    assert next(gen) == 1
    with pytest.raises(gr.Error, match="Stopped for a reason"):
        next(gen)
    assert "memory" in friendly_message(RuntimeError("CUDA out of memory. Tried to allocate"))


def test_a_run_that_cannot_start_says_what_to_change_before_anything_is_queued(ws):
    ws.set_text("Too short to train on. " * 12, name="tiny")
    windows = ws.stats("char", context_length=16, batch_size=64).train_windows
    fix = f"choose a batch size of at most {windows}"
    assert fix in train_tab.estimate(ws, ui_form(batch_size=64))  # said before Train is pressed
    with pytest.raises(WorkspaceError, match=f"fewer than one batch of 64: {fix}"):
        next(train_tab.train(ws, ui_form(batch_size=64), START_FROM[0]))
    assert ws.job is None and ws.own is None
    # The value it names works.
    assert list(train_tab.train(ws, ui_form(batch_size=windows, num_epochs=1), START_FROM[0]))[-1][0].startswith("Done")
