"""What the page says, checked at the handlers (no server): each tab's message area, the prompt
and the continuation told apart, a prompt a model cannot read, Chinese texts and BPE, the
details of a scored token, Model B's choices.

Models are tiny (2 layers, 32 wide, context 16, character tokens): the words are tested here,
the browser tests check that a person sees them.
"""
from __future__ import annotations

import re

import gradio as gr
import pytest
import torch

from gpt_core.corpus import load_sample
from gpt_core.generate import score_text
from gpt_core.render import format_probability
from gpt_core.tokenizers import CharTokenizer, GPT2Tokenizer, byte_piece_share, opening, unreadable_share
from playground import data_tab, evaluate_tab, generate_tab, notices, train_tab
from playground.common import bind, friendly_message
from playground.limits import Limits
from playground.models import NO_MODEL, OWN
from playground.options import START_FROM
from playground.prompts import prepare_prompt
from playground.session import Workspace
from test_app_handlers import ui_form

LUNYU = "论语 (The Analects)"
pytestmark = pytest.mark.usefixtures("one_thread")


def form(**overrides) -> dict:
    """The handlers' tiny form, sampling from the English start context the page opens with."""
    return ui_form(**{"num_epochs": 1, "drop_rate": 0.0, "eval_freq": 50, "eval_iter": 1,
                      "start_context": "Every effort moves you", **overrides})


@pytest.fixture(scope="module")
def lunyu_ws(one_thread_per_module):
    """A session that trained a tiny character model on the first 3,000 characters of 论语,
    with the English start context the form starts with."""
    w = Workspace(limits=Limits(max_corpus_chars=100_000))
    w.set_text(load_sample(LUNYU)[:3000], name=LUNYU)
    outputs = list(train_tab.train(w, form(), START_FROM[0]))
    w.outputs = outputs
    yield w
    w.close()


# --- Chinese texts -------------------------------------------------------------------------------
def test_a_text_bpe_splits_into_bytes_suggests_characters_and_english_does_not(verdict_text):
    lunyu = load_sample(LUNYU)
    assert byte_piece_share(GPT2Tokenizer(), lunyu[:2000]) > 0.8
    assert byte_piece_share(GPT2Tokenizer(), verdict_text[:2000]) == 0
    ws = Workspace(limits=Limits(max_corpus_chars=100_000))
    try:
        ws.set_text(lunyu[:4000], name=LUNYU)
        _, warnings, _, _ = data_tab.view(ws, "GPT-2 BPE", 64, 8, 0)
        assert "mostly into pieces of characters" in warnings and "choose Characters" in warnings
        _, warnings, _, _ = data_tab.view(ws, "Characters", 64, 8, 0)
        assert "pieces of characters" not in warnings  # already the fitting tokenizer
        assert "pieces of characters" in train_tab.estimate(ws, form(tokenizer="GPT-2 BPE"))
        ws.set_text(verdict_text[:4000], name="verdict")
        assert "pieces of characters" not in data_tab.view(ws, "GPT-2 BPE", 64, 8, 0)[1]
    finally:
        ws.close()


def test_unreadable_share_and_the_opening_of_a_text():
    tok = CharTokenizer.from_text("学而篇\n子曰：学而时习之")
    assert unreadable_share(tok, "Every effort") == 1.0
    assert unreadable_share(tok, "子曰 x") == pytest.approx(1 / 3)
    assert unreadable_share(GPT2Tokenizer(), "子曰 anything") == 0.0
    assert opening("\n  学而篇\n子曰") == "学而篇" and opening("x" * 40) == "x" * 16


def test_an_english_start_context_for_a_chinese_character_model_is_replaced_and_said(lunyu_ws):
    final_status = lunyu_ws.outputs[-1][0]
    assert "“Every effort moves you” is in characters this model never saw" in final_status
    assert "“学而篇”" in final_status
    samples = lunyu_ws.outputs[-1][4]
    assert "学而篇" in samples and "Every" not in samples  # the samples start from the text's characters


def test_generate_replaces_a_prompt_the_model_cannot_read_and_says_so(lunyu_ws):
    html = list(generate_tab.generate_view(lunyu_ws, OWN, "Every effort moves you", 5, 0, 0, 1.0, None, True))[-1][0]
    assert "never saw in its text" in html and "学而篇" in html
    text = list(generate_tab.generate_text(lunyu_ws, OWN, "Every effort moves you", 5, 0, 0, 1.0, None, True))[-1]
    assert text.startswith("学而篇") and len(text) == len("学而篇") + 5


# --- prompt and continuation -----------------------------------------------------------------------
def test_the_view_shows_prompt_and_continuation_apart_and_the_api_the_whole_text(lunyu_ws):
    prompt = "子曰：学而"
    html = list(generate_tab.generate_view(lunyu_ws, OWN, prompt, 6, 0, 0, 1.0, None, True))[-1][0]
    shown_prompt = re.search(r"<span class='gen-prompt'[^>]*>(.*?)</span>", html).group(1)
    shown_new = re.search(r"<span class='gen-new'[^>]*>(.*?)</span>", html).group(1)
    text = list(generate_tab.generate_text(lunyu_ws, OWN, prompt, 6, 0, 0, 1.0, None, True))[-1]
    assert shown_prompt == prompt and len(shown_new) == 6 and text == prompt + shown_new
    assert "gen-cut" not in html and "never saw" not in html


def test_a_prompt_longer_than_the_context_is_cut_and_the_page_says_so(lunyu_ws):
    prompt = lunyu_ws.text[:40]  # 40 characters for a context of 16
    html = list(generate_tab.generate_view(lunyu_ws, OWN, prompt, 3, 0, 0, 1.0, None, True))[-1][0]
    assert "The prompt has 40 tokens; the model sees only its last 16" in html
    cut = re.search(r"<span class='gen-cut'[^>]*>(.*?)</span>", html, re.S).group(1)
    seen = re.search(r"<span class='gen-prompt'[^>]*>(.*?)</span>", html, re.S).group(1)
    assert cut + seen == prompt.replace("\n", "\n") and len(seen) == 16


def test_prepare_prompt_refuses_what_it_cannot_use():
    tok = CharTokenizer.from_text("abc ")
    with pytest.raises(ValueError, match="empty"):
        prepare_prompt(tok, "", 8, "abc", max_chars=100)
    with pytest.raises(ValueError, match="longer than 100"):
        prepare_prompt(tok, "a" * 101, 8, "abc", max_chars=100)
    with pytest.raises(ValueError, match="knows none of the characters"):
        prepare_prompt(tok, "xyz", 8, "XYZ", max_chars=100)
    few = prepare_prompt(tok, "abcx", 8, "abc", max_chars=100)  # one unknown of four: kept, said
    assert few.text == "abc " and "never saw “x”" in few.notes[0]


# --- token details -----------------------------------------------------------------------------------
def test_score_text_ranks_each_token_and_names_the_model_s_first_guess(lunyu_ws):
    model = lunyu_ws.own.model.eval()
    ids = lunyu_ws.own.tokenizer.encode(lunyu_ws.text[:30])
    score = score_text(model, ids)  # two windows of 16
    with torch.no_grad():
        x = torch.tensor([ids])
        probs = torch.cat([torch.softmax(model(x[:, s:s + 16][:, :len(ids) - 1 - s]), -1)
                           for s in range(0, len(ids) - 1, 16)], dim=1)[0]
    targets = torch.tensor(ids[1:])
    want_ranks = (probs > probs[torch.arange(len(targets)), targets].unsqueeze(-1)).sum(-1) + 1
    assert torch.equal(score.ranks[0], want_ranks)
    assert torch.equal(score.top_ids[0], probs.argmax(-1))
    assert (score.ranks[0] == 1).eq(score.top_ids[0] == targets).all()


def test_evaluate_gives_each_token_its_probability_rank_and_the_first_guess(lunyu_ws):
    a_md, a_html, b_md, b_html, _ = evaluate_tab.evaluate(lunyu_ws, lunyu_ws.text[:20], OWN, NO_MODEL)
    tips = re.findall(r"<span class='tok-tip'>(.*?)</span></span>", a_html)
    assert len(tips) == 20  # the first token says it is not predicted, the 19 others their details
    assert "not predicted" in tips[0]
    assert all(re.search(r"p = [\d.e%-]+ · rank [\d,]+ of [\d,]+ · the model", t) for t in tips[1:]), tips[1]
    assert "p = 0.0000" not in a_html and "tabindex='0'" in a_html  # a tap focuses a token
    assert b_md == "" and "Choose a model to compare" in b_html  # Model B's "None" scores nothing
    assert format_probability(0.5) == "50.0%" and format_probability(0.004) == "0.40%"
    assert format_probability(3.2e-5) == "3.2e-05"


def test_model_b_offers_none_by_name_never_a_blank(lunyu_ws):
    _, _, b = train_tab.model_dropdowns(lunyu_ws, None, None, None)
    assert b["choices"][0] in (NO_MODEL, (NO_MODEL, NO_MODEL)) and "" not in b["choices"]
    assert b["value"] == NO_MODEL


# --- the message areas ---------------------------------------------------------------------------
def test_a_failure_shown_in_the_page_is_kept_for_its_area_without_a_toast(monkeypatch):
    def refuse_it(ws, value):
        raise ValueError(f"Value {value} is refused; see https://example.org/help?x=1 ([Errno -2] nope)")

    def api_only(ws):
        raise ValueError("api only")

    monkeypatch.setattr(notices, "SHOWN_IN_PAGE", {notices.handler_key(refuse_it)})
    request = gr.Request()
    request.session_hash = "page-messages-test"
    with pytest.raises(gr.Error) as info:
        bind(refuse_it)(request, 7)
    assert info.value.visible is False  # the page shows it in the tab, not as a toast
    assert info.value.message == "Value 7 is refused; see example.org (nope)"
    from playground.common import REGISTRY
    ws = REGISTRY.get("page-messages-test")
    assert notices.take(ws, notices.handler_key(refuse_it)) == info.value.message
    assert notices.take(ws, notices.handler_key(refuse_it)) is None  # shown once
    with pytest.raises(gr.Error) as info:
        bind(api_only)(request)
    assert info.value.visible is True and notices.take(ws, notices.handler_key(api_only)) is None
    REGISTRY.release("page-messages-test")


def test_messages_never_show_a_web_address_or_an_errno():
    shown = friendly_message(ConnectionError(
        "could not download GPT-2 124M file checkpoint.\n  https://openaipublic.blob.core.windows.net/gpt-2/"
        "models/124M/checkpoint: could not connect ([Errno -2] Name or service not known)"))
    assert "https://" not in shown and "Errno" not in shown and "openaipublic.blob.core.windows.net" in shown


def test_a_refused_upload_says_which_text_stays_active(tmp_path):
    ws = Workspace(limits=Limits(max_corpus_chars=100_000))
    try:
        pdf = tmp_path / "notes.txt"
        pdf.write_bytes(b"%PDF-1.4\n" + b"\x00" * 100)
        with pytest.raises(ValueError, match="PDF"):
            data_tab.upload_text(ws, str(pdf), "GPT-2 BPE", 64, 8, 0)
        assert data_tab.still_active(ws) == f"The active text is still **{ws.corpus_name}**, as the summary shows."
        assert data_tab.view(ws, "GPT-2 BPE", 64, 8, 0)[0].startswith(f"Active text: **{ws.corpus_name}**")
    finally:
        ws.close()
