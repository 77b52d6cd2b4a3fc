"""GPT-2 tab: download OpenAI's weights (with progress) or import them from a folder on the
server; those are shared read-only by every session. An uploaded GPT-2 becomes the
uploader's own model and nothing else: it is never written to the models folder, never
shared, and never mistaken for OpenAI's release."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from gpt_core.config import GPT2_SIZES

from .common import SETTINGS, SHARED, clear_on, explain_failures
from .formatting import format_bytes, format_count
from .i18n import tr
from .models import gpt2_key
from .notices import message_area
from .session import Workspace, WorkspaceError

log = logging.getLogger("playground")
SIZES = list(GPT2_SIZES)
# Sizes this server may load (each stays in memory for everyone): all locally, the two
# smaller ones on a free Hugging Face Space (16 GB shared by every visitor).
ALLOWED_SIZES = [s.strip() for s in os.environ.get(
    "PLAYGROUND_GPT2_SIZES", "124M,355M" if SETTINGS.on_spaces else ",".join(SIZES)).split(",") if s.strip()]


def models_dir() -> Path:
    from gpt_core.gpt2 import default_models_dir

    return default_models_dir()


def import_roots() -> list[Path]:
    """Folders under which "Import from folder" may read: the models folder, plus any listed in
    PLAYGROUND_IMPORT_ROOTS. Nothing else on the server can be named from the browser."""
    extra = [p for p in os.environ.get("PLAYGROUND_IMPORT_ROOTS", "").split(os.pathsep) if p]
    return [Path(p).expanduser().resolve() for p in [str(models_dir()), *extra]]


def example_folder() -> str:
    return str(models_dir() / "124M")


def sizes_table(ws: Workspace | None = None) -> str:
    """The sizes, in the session's language (drawn on load and when the language changes)."""
    rows = [tr("| Size | Layers × width | Parameters | Memory (float32) | Here |"), "|---|---|---|---|---|"]
    for size, cfg in GPT2_SIZES.items():
        allowed = "✓" if size in ALLOWED_SIZES else tr("not on this server")
        rows.append(f"| {size} | {cfg.n_layers} × {cfg.emb_dim} | {format_count(cfg.num_parameters())} | "
                    f"{format_bytes(cfg.memory_bytes())} | {allowed} |")
    return "\n".join(rows) + "\n\n" + tr("The download is about the size of the memory figure (one copy per server).")


def import_help(ws: Workspace | None = None) -> str:
    """How to bring GPT-2 without internet, in the session's language."""
    return tr("Without internet, copy OpenAI's GPT-2 files (the 7 files of a size: `checkpoint`, "
              "`encoder.json`, `hparams.json`, `model.ckpt.data-00000-of-00001`, `model.ckpt.index`, "
              "`model.ckpt.meta`, `vocab.bpe`) or a Hugging Face `model.safetensors` into a folder "
              "on the server, e.g. `{example}`, and import it here; or upload the files. "
              "Folders are accepted under: {roots}.",
              example=example_folder(), roots=", ".join(f"`{p}`" for p in import_roots()))


def loaded_models_md() -> str:
    keys = SHARED.keys()
    if not keys:
        return "No GPT-2 loaded yet. Loaded models are shared by everyone on this server, read-only."
    rows = ["**Loaded on this server** (shared, read-only):", "",
            "| Model | Layers | emb_dim | Heads | Context | Vocabulary | Parameters |", "|---|---|---|---|---|---|---|"]
    for key in keys:
        entry = SHARED.get(key)
        if entry is None:
            continue
        cfg = entry[1]
        rows.append(f"| {key} | {cfg.n_layers} | {cfg.emb_dim} | {cfg.n_heads} | {cfg.context_length} | "
                    f"{cfg.vocab_size:,} | {format_count(cfg.num_parameters())} |")
    rows.append("\nUse them in **Generate** and **Evaluate**, or train a copy in **Train** (Start from: GPT-2).")
    return "\n".join(rows)


def _loaded(key: str) -> tuple[str, str]:
    model, cfg, _ = SHARED.get(key)
    status = (f"✅ **{key}** is loaded: {cfg.n_layers} layers, emb_dim {cfg.emb_dim}, {cfg.n_heads} heads, "
              f"context {cfg.context_length}, {format_count(cfg.num_parameters())} parameters.")
    return status, loaded_models_md()


def _download_failed(size: str, exc: Exception) -> str:
    """A sentence for the page; the URLs, errors and paths go to the server log only."""
    log.warning("GPT-2 %s: download or load failed: %s", size, exc)
    from gpt_core.gpt2 import DownloadError

    if isinstance(exc, DownloadError) and exc.offline:
        why = "This server cannot reach the internet, so GPT-2 cannot be downloaded here."
    elif isinstance(exc, DownloadError):
        why = (f"The download of GPT-2 {size} did not complete, or its files did not match OpenAI's "
               "release (the part fetched is kept, so pressing Download again resumes).")
    else:
        why = f"The GPT-2 {size} files on this server could not be read."
    return (f"{why} The details are in the server's log. The operator can copy OpenAI's release files "
            "into the server's models folder and use *Import from a folder*; or upload a GPT-2 below "
            "to use it as your own model.")


def download(ws: Workspace, progress, size: str):
    """Download (or find) GPT-2 `size` and load it for everyone."""
    from gpt_core.gpt2 import DownloadError, GPT2LoadError, load_gpt2

    if size not in SIZES:
        raise ValueError(f"Unknown GPT-2 size {size!r}; choose one of {', '.join(SIZES)}.")
    if size not in ALLOWED_SIZES:
        raise WorkspaceError(f"GPT-2 {size} is too large for this server; choose one of {', '.join(ALLOWED_SIZES)}.")
    key = gpt2_key(size)

    tries = [0]

    def report(p) -> None:
        # A sentence for the page; the addresses and the system's error go to the log. (Gradio
        # shows a description only beside a fraction: a bare None shows just the clock.)
        fraction = p.done / p.total if p.total else 0.0
        if p.status == "retrying":
            tries[0] += 1
            log.info("GPT-2 %s: %s", size, p.message)
            progress(fraction, desc=tr("No answer from the download server yet (try {n}); trying again…", n=tries[0]))
        elif p.status == "waiting":
            progress(fraction, desc=tr("Another student is downloading this model; waiting for it…"))
        elif p.total:
            progress((p.done, p.total), desc=tr("Downloading GPT-2 {size} ({file})", size=size, file=p.file),
                     unit="bytes")
        else:
            progress(None, desc=tr("Downloading GPT-2 {size} ({file})", size=size, file=p.file))

    def loader():
        progress(0, desc=f"looking for GPT-2 {size}")
        return load_gpt2(size, models_dir=models_dir(), progress=report)

    try:
        SHARED.load(key, loader, nbytes=GPT2_SIZES[size].memory_bytes())
    except (DownloadError, GPT2LoadError) as e:
        raise WorkspaceError(_download_failed(size, e)) from None
    return _loaded(key)


def _check_import_path(folder: str) -> Path:
    if not isinstance(folder, str) or not folder.strip():
        raise ValueError("Type the folder that holds the GPT-2 files.")
    path = Path(folder.strip()).expanduser()
    if not path.is_absolute():
        path = models_dir() / path
    resolved = path.resolve()
    for root in import_roots():
        if resolved == root or root in resolved.parents:
            if not resolved.is_dir() and not resolved.is_file():
                raise FileNotFoundError(f"{resolved} does not exist. Copy the GPT-2 files there first.")
            return resolved
    raise PermissionError(
        "For safety this server imports only from " + ", ".join(str(r) for r in import_roots())
        + ". Copy the files under one of these folders (or upload them).")


def import_folder(ws: Workspace, progress, folder: str):
    """Load GPT-2 from a folder the operator put on the server (under the import roots) for
    everyone. A size folder of the models folder ("124M") loads only verified files."""
    from gpt_core.gpt2 import load_gpt2, size_of

    path = _check_import_path(folder)
    progress(None, desc="reading the weights (the first time converts them: up to a minute)")
    if path.parent == models_dir().resolve() and path.name in SIZES:
        model, cfg, tok = load_gpt2(path.name, models_dir=models_dir(), download=False)
    else:
        model, cfg, tok = load_gpt2(str(path), download=False)
    size = size_of(cfg)
    if size is not None and size not in ALLOWED_SIZES:
        raise WorkspaceError(f"GPT-2 {size} is too large for this server; choose one of {', '.join(ALLOWED_SIZES)}.")
    key = gpt2_key(size) if size else f"GPT-2 ({path.name})"
    SHARED.load(key, lambda: (model, cfg, tok), nbytes=cfg.memory_bytes())
    return _loaded(key)


def import_upload(ws: Workspace, progress, files):
    """An uploaded GPT-2 (a model.safetensors, or the release's files) becomes this student's
    own model ("Your model"), in this session's memory. It is converted in a private temporary
    folder that is deleted afterwards: nothing is written to the shared models folder, and the
    server's GPT-2 stays what it was."""
    if not files:
        raise ValueError("No files arrived. Choose a model.safetensors or the GPT-2 release files.")
    paths = [str(f) for f in (files if isinstance(files, (list, tuple)) else [files])]
    ws.require_idle("load an uploaded GPT-2")
    # The weights are about the size of the files: held in the budget before they are read.
    ws.reserve("model", sum(os.path.getsize(p) for p in paths if os.path.isfile(p)), "your uploaded GPT-2")
    progress(None, desc="checking and converting the uploaded weights")
    private = Path(tempfile.mkdtemp(prefix="gpt2-upload-"))
    try:
        model, cfg, tok, size = _read_upload(paths, private)
    except BaseException:
        ws.settle_memory()
        raise
    finally:
        shutil.rmtree(private, ignore_errors=True)
    label = f"Uploaded GPT-2 {size}" if size else "Uploaded GPT-2"
    ws.adopt_model(model, cfg, tok, label)
    status = (f"✅ Your upload is now **your model** ({label}: {cfg.n_layers} layers, emb_dim {cfg.emb_dim}, "
              f"{cfg.n_heads} heads, context {cfg.context_length}, {format_count(cfg.num_parameters())} "
              "parameters). It is private to you: other students do not see it, and the server's shared "
              "GPT-2 is unchanged. Choose *Your model* in Generate, Evaluate or Train.")
    return status, loaded_models_md()


def _read_upload(paths: list[str], private: Path):
    """(model, config, tokenizer, size) of uploaded GPT-2 files, converted in `private`."""
    from gpt_core.gpt2 import GPT2LoadError, import_gpt2, load_gpt2, size_of

    try:
        model, cfg, tok = load_gpt2(import_gpt2(paths, models_dir=private, name="upload"), download=False)
    except GPT2LoadError as e:  # the same sentence, without the server's folders in it
        message = str(e)
        for folder in {str(private / "upload"), *(str(Path(f).parent) for f in paths)}:
            message = message.replace(folder + os.sep, "")
        raise type(e)(message) from None
    size = size_of(cfg)
    if size is not None and size not in ALLOWED_SIZES:
        raise WorkspaceError(f"GPT-2 {size} is too large for this server; choose one of {', '.join(ALLOWED_SIZES)}.")
    # The weights are views of a file in the folder about to go: give the model its own memory.
    for param in model.parameters():
        param.data = param.data.clone()
    return model, cfg, tok, size


def layout() -> SimpleNamespace:
    """The tab, made where it is called (inside the page's gr.Tabs)."""
    with gr.Tab("4 · GPT-2", id="gpt2") as tab:
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                size = gr.Radio(SIZES, value="124M", label="GPT-2 size")
                download_btn = gr.Button("Download and load", variant="primary", elem_id="gpt2-download")
                message = message_area("gpt2-message")
                with gr.Accordion("Offline? Import from a folder or upload", open=False):
                    help_md = gr.Markdown()  # drawn in the session's language on load
                    folder = gr.Textbox(label="Folder on the server", elem_id="gpt2-folder",
                                        placeholder=example_folder())
                    folder_btn = gr.Button("Import from folder", elem_id="gpt2-folder-btn")
                    files = gr.File(label="Upload the files (.safetensors, or the 7 files of OpenAI's release)",
                                    file_count="multiple", type="filepath", height=150)
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id="gpt2-status")
                sizes = gr.Markdown()  # drawn in the session's language on load
                info = gr.Markdown(loaded_models_md())
    return SimpleNamespace(tab=tab, size=size, download_btn=download_btn, message=message, help=help_md,
                           folder=folder, folder_btn=folder_btn, files=files, status=status, sizes=sizes,
                           info=info)


def wire(ui: SimpleNamespace, bind_progress) -> None:
    """Download, import from a folder, upload: one at a time on the server, each failure said
    in the tab's message area until the next try."""
    outputs = [ui.status, ui.info]
    one_at_a_time = dict(concurrency_id="gpt2", concurrency_limit=1, show_progress_on=[ui.status])
    explain_failures(ui.message,
                     (ui.download_btn.click(bind_progress(download), ui.size, outputs, api_name="gpt2_download",
                                            show_progress="full", **one_at_a_time), download),
                     (ui.folder_btn.click(bind_progress(import_folder), ui.folder, outputs,
                                          api_name="gpt2_import_folder", **one_at_a_time), import_folder))
    explain_failures(ui.message, (ui.files.upload(bind_progress(import_upload), ui.files, outputs,
                                                  api_name="gpt2_import_upload", **one_at_a_time), import_upload),
                     reset=[ui.files])
    clear_on(ui.message, ui.size.input, ui.download_btn.click, ui.folder.input, ui.folder_btn.click,
             ui.files.upload)
