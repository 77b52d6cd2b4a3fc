"""A workspace's checkpoint files: an upload made the session's model, the model saved for
download, and the session's private folder.

`CheckpointFiles` is part of `session.Workspace`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from gpt_core.checkpoint import CheckpointLimits, load_model, read_checkpoint, save_checkpoint
from gpt_core.prepare import prepare_training, select_device
from gpt_core.tokenizers import GPT2Tokenizer

from .errors import WorkspaceError
from .limits import session_folder
from .memory import release_freed_memory
from .own_model import OwnedModel, resident_bytes


class CheckpointFiles:
    """Checkpoints in and out of a `Workspace`."""

    def load_checkpoint(self, path: str) -> tuple[OwnedModel, str]:
        """Make an uploaded checkpoint (ours, or the book's model.pth) this session's model.

        Returns the model and a note for the user. Read with weights_only (no code runs);
        a model larger than the session may train is refused before anything is built for
        it, and a refused file's memory is given back at once. A checkpoint of ours that
        stopped early can be resumed on the current text (the text it was trained on).
        """
        limits = CheckpointLimits.for_models_up_to(self.limits.max_train_parameters,
                                                   max_context_length=self.limits.max_context_length,
                                                   max_layers=self.limits.max_layers)
        with self.reading(path, "reading the uploaded checkpoint", at_most=limits.max_tensor_bytes):
            return self._adopt_checkpoint(path, limits)  # its file is unmapped when this returns

    def _adopt_checkpoint(self, path: str, limits: CheckpointLimits) -> tuple[OwnedModel, str]:
        try:
            ckpt = read_checkpoint(path, limits=limits)
            config = ckpt.model_config
            self.check_trainable(config)
            tok = ckpt.tokenizer()
            if tok is None:
                if config.vocab_size != GPT2Tokenizer().n_vocab:
                    raise WorkspaceError(
                        f"This checkpoint does not say which tokenizer it used and its vocabulary has "
                        f"{config.vocab_size:,} tokens (GPT-2's has 50,257), so its ids cannot be read.")
                tok = GPT2Tokenizer()
            if tok.n_vocab != config.vocab_size:
                raise WorkspaceError(f"The checkpoint's tokenizer has {tok.n_vocab:,} tokens but its model "
                                     f"{config.vocab_size:,}; the file is inconsistent.")
        except ValueError:  # CheckpointError, WorkspaceError: the file is refused
            ckpt = None  # the traceback keeps this frame; it must not keep the file's tensors
            release_freed_memory()
            raise
        label = "Uploaded checkpoint" if ckpt.kind == "gpt_core" else "Uploaded book model"
        note = "Use it in Generate and Evaluate, or train it further (Start from: your model)."
        if ckpt.config_inferred:
            note = (f"Its settings were read off the tensor shapes, with {config.n_heads} attention heads "
                    f"of 64 dimensions assumed (as in GPT-2 and the book's 124M). " + note)
        if ckpt.kind == "gpt_core" and ckpt.trainer_state and ckpt.train_config is not None:
            self.reserve("model", resident_bytes(config, True), "the uploaded model")
            try:
                # Replayed from here on too, if the file's run kept no timeline yet.
                trainer = prepare_training(self.text, config=ckpt.train_config.replace(timeline=True), resume=ckpt)
            except ValueError as e:
                trainer, note = None, note + f" (Its run cannot be resumed on the current text: {e}.)"
            if trainer is not None:
                self._install(trainer, tok, label)
                if not trainer.finished:
                    note = (f"Its run stopped at step {trainer.state.step + 1:,} of {trainer.total_steps:,}: "
                            f"press Resume to continue it on the current text ({self.corpus_name}).")
                return self.own, note
        self.reserve("model", resident_bytes(config, False), "the uploaded model")
        model, _ = load_model(ckpt, device=select_device("auto"), limits=limits)
        return self.adopt_model(model, config, tok, label), note

    def save_checkpoint(self) -> str:
        """Write this session's model (with optimizer and training state when it has them) to
        the session's folder and return the path; earlier files of the session are removed."""
        own = self.own
        if own is None:
            raise WorkspaceError("There is no model to save yet: train one first.")
        folder = self.files_dir()
        step = own.trainer.state.step + 1 if own.trainer is not None else 0
        shape = (f"gpt-{own.config.n_layers}x{own.config.emb_dim}" if hasattr(own.config, "n_layers")
                 else f"bigram-{own.config.vocab_size}")
        path = folder / f"{shape}-step{step}.pt"
        with self.lock:
            if self.closed:  # a run ending after its tab closed must not leave files behind
                raise WorkspaceError("This session has ended. Reload the page to start again.")
            if own.trainer is not None:
                own.trainer.save_checkpoint(path)
            else:
                save_checkpoint(path, model=own.model, model_config=own.config, tokenizer=own.tokenizer)
            # Older files go only once the new one is whole: a failed save (disk full) keeps them.
            for old in folder.iterdir():
                if old.name != path.name and old.is_file():
                    old.unlink(missing_ok=True)
            own.checkpoint_path = str(path)
        return str(path)

    def files_dir(self) -> Path:
        """This session's private folder for files it offers for download."""
        folder = session_folder(self.files_root, self.id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _drop_checkpoints(self) -> None:
        folder = session_folder(self.files_root, self.id)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        # self._own, not self.own: that would read a spilled model back from the folder just removed.
        if self._own is not None:
            self._own.checkpoint_path = None
