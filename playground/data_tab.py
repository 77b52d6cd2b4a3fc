"""Data tab: choose, upload or paste a text, and see what the model will see of it."""
from __future__ import annotations

import os

from gpt_core.render import MORE_NOTE, message_html, tokens_html
from gpt_core.tokenizers import byte_piece_share
from .fields import form_number
from .formatting import format_count
from .i18n import tr, translate_message
from .run_plan import size_from_stats, window_problems
from .session import Workspace

TOKENIZERS = {"GPT-2 BPE": "gpt2", "Characters": "char"}
TOKENIZER_LABELS = {v: k for k, v in TOKENIZERS.items()}
SHOW_TOKENS = 300
PREVIEW_CHARS = 3_000
# GPT-2's BPE giving more than this share of a text's tokens as pieces of characters (most
# Chinese characters are two or three byte tokens): the Characters tokenizer fits it better.
BYTE_PIECES = 0.5


def tokenizer_kind(label: str) -> str:
    try:
        return TOKENIZERS[label]
    except KeyError:
        raise ValueError(f"Unknown tokenizer {label!r}; choose GPT-2 BPE or Characters.") from None


def tokenizer_hint(ws: Workspace, kind: str) -> str | None:
    """A suggestion of the Characters tokenizer for a text that BPE splits mostly into bytes."""
    if kind != "gpt2":
        return None
    share = byte_piece_share(ws.tokenizer("gpt2"), ws.text[:5_000])
    if share <= BYTE_PIECES:
        return None
    return tr("GPT-2 BPE splits this text mostly into pieces of characters: {share} of its tokens are "
              "single bytes of a character (the “�” tokens), not whole characters. The Characters tokenizer "
              "gives every character a token of its own, as the BabyGPT notebook does for Chinese: choose "
              "Characters, or a character-level preset.", share=f"{share:.0%}")


def view(ws: Workspace, tokenizer_label: str, context_length, batch_size, stride, iterations=0):
    """(summary markdown, warnings html, first tokens html, text preview). The warnings are
    those of the Train form's batching: epochs, or (`iterations`) random windows."""
    kind = tokenizer_kind(tokenizer_label)
    context_length = form_number(context_length, "Context length", 1, whole=True)
    batch_size = form_number(batch_size, "Batch size", 1, whole=True)
    stride = form_number(stride, "Stride", 1, whole=True) if stride else context_length
    random_windows = bool(form_number(iterations, "Iterations", 0, whole=True, empty=0))
    stats = ws.stats(kind, context_length=context_length, stride=stride, batch_size=batch_size)
    tok = ws.tokenizer(kind)
    text = ws.text
    vocab = tok.n_vocab
    summary = "\n".join([
        tr("Active text: **{name}** (read as {encoding})", name=translate_message(ws.corpus_name),
           encoding=ws.encoding_note),
        "",
        f"| {tr('What the model sees')} | |",
        "|---|---|",
        f"| {tr('Characters')} | " + tr("{count} ({unique} different)", count=f"{stats.characters:,}",
                                        unique=f"{stats.unique_characters:,}") + " |",
        f"| {tr('Tokens ({tokenizer})', tokenizer=tr(tokenizer_label))} | {stats.tokens:,} |",
        f"| {tr('Vocabulary size')} | {vocab:,} |",
        f"| {tr('Training part (90%)')} | "
        + tr("{tokens} tokens, {windows} windows", tokens=f"{stats.train_tokens:,}",
             windows=f"{stats.train_windows:,}") + " |",
        f"| {tr('Validation part (10%)')} | "
        + tr("{tokens} tokens, {windows} windows", tokens=f"{stats.val_tokens:,}",
             windows=f"{stats.val_windows:,}") + " |",
        f"| {tr('Batches per epoch')} | " + tr("{batches} of {size} x {context} tokens", batches=f"{stats.train_batches:,}",
                                            size=batch_size, context=context_length) + " |",
        f"| {tr('Characters per token')} | {stats.characters / max(1, stats.tokens):.2f} |",
    ])
    hint = tokenizer_hint(ws, kind)
    problems = window_problems(size_from_stats(stats, random_windows=random_windows), context_length=context_length,
                               batch_size=batch_size, stride=stride if stride != context_length else None,
                               random_windows=random_windows)
    warnings = (message_html(hint, kind="info") if hint else "") + "".join(
        message_html(w, kind="warn") for w in problems)
    head = text[:20_000]  # enough characters for SHOW_TOKENS tokens of any tokenizer
    ids = tok.encode(head)[:SHOW_TOKENS]
    pieces = tok.token_strings(ids)
    token_view = tokens_html(pieces, ids, more=max(0, stats.tokens - len(ids)), more_note=tr(MORE_NOTE))
    preview = text[:PREVIEW_CHARS] + ("\n..." if len(text) > PREVIEW_CHARS else "")
    return summary, warnings, token_view, preview


def still_active(ws: Workspace) -> str:
    """After a refused text: which text the model still sees (the summary beside shows it)."""
    return tr("The active text is still **{name}**, as the summary shows.", name=tr(ws.corpus_name))


def choose_sample(ws: Workspace, name: str, tokenizer_label, context_length, batch_size, stride, iterations=0):
    ws.require_idle("change the text")
    ws.load_sample(name)
    return view(ws, tokenizer_label, context_length, batch_size, stride, iterations)


def upload_text(ws: Workspace, path, tokenizer_label, context_length, batch_size, stride, iterations=0):
    if not path:
        raise ValueError("No file arrived. Choose a .txt file to upload.")
    ws.require_idle("change the text")
    max_bytes = ws.limits.max_corpus_chars * 4  # UTF-8 takes at most 4 bytes a character
    if os.path.getsize(path) > max_bytes:
        raise ValueError(f"This file is {os.path.getsize(path) / 1e6:.1f} MB; texts up to "
                         f"{ws.limits.max_corpus_chars:,} characters are accepted. Upload an excerpt.")
    with open(path, "rb") as f:
        data = f.read()
    name = os.path.basename(str(path))
    ws.load_bytes(data, name=f"Uploaded: {name}")
    return view(ws, tokenizer_label, context_length, batch_size, stride, iterations)


def use_pasted(ws: Workspace, text: str, tokenizer_label, context_length, batch_size, stride, iterations=0):
    ws.require_idle("change the text")
    text = (text or "").replace("\r\n", "\n")
    ws.set_text(text, name=f"Pasted text ({format_count(len(text))} characters)")
    return view(ws, tokenizer_label, context_length, batch_size, stride, iterations)
