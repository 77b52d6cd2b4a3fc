"""The book's GPT-2 functions with the book's signatures (llms_from_scratch.ch05), driven by the
name table in convert.py (not sixty `assign` lines), every tensor's shape checked before
anything is written. They hold the whole model in numpy, as the book does; `load_gpt2` is the
lean path."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from . import convert as conv
from .convert import GPT2LoadError, WeightError
from .release import REQUIRED_FILES, check_release_files, download_gpt2, read_hparams


def _prefix(ckpt_path: str | os.PathLike) -> Path:
    p = Path(ckpt_path)
    return p / "model.ckpt" if p.is_dir() else p


def load_gpt2_params_from_tf_ckpt(ckpt_path: str | os.PathLike, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The book's params dict ({"wte", "wpe", "g", "b", "blocks": [...]}, numpy float32) read
    with TensorFlow in this process, every tensor's shape checked first. `ckpt_path` is the
    prefix (".../124M/model.ckpt", as tf.train.latest_checkpoint gives) or the folder.
    Holds the whole model in memory: `load_gpt2` is the lean path."""
    prefix = _prefix(ckpt_path)
    try:
        hp = conv.check_hparams(settings, where="settings")
    except ValueError as e:
        raise GPT2LoadError(str(e)) from None
    folder = prefix.parent
    hp_file = folder / "hparams.json"
    if hp_file.is_file() and read_hparams(hp_file) != hp:
        raise GPT2LoadError(f"settings {hp} differ from {hp_file} {read_hparams(hp_file)}")
    check_release_files({n: folder / n for n in REQUIRED_FILES if (folder / n).is_file()}, where=str(folder),
                        hparams=hp)  # sizes checked before TensorFlow reads anything
    reader = conv.open_tf_checkpoint(str(prefix))
    rows = conv.weight_rows(hp)
    conv.check_source_shapes(conv.tf_variable_shapes(reader), rows, kind="tf", what=str(prefix))
    params: dict[str, Any] = {"blocks": [{} for _ in range(hp["n_layer"])]}
    for row in rows:
        *path, last = row.book
        d = params
        for key in path:
            d = d[key] if isinstance(key, int) else d.setdefault(key, {})
        d[last] = conv.read_tf_row(reader, row)
    return params


def download_and_load_gpt2(model_size: str, models_dir: str | os.PathLike) -> tuple[dict[str, int], dict[str, Any]]:
    """The book's `(settings, params)`: GPT-2 `model_size` downloaded into `models_dir/model_size`
    (resumable and verified, complete files skipped), its hparams.json and its params dict read
    with TensorFlow in this process. `load_weights_into_gpt(gpt, params)` then fills a model."""
    folder = download_gpt2(model_size, models_dir)
    settings = read_hparams(folder / "hparams.json")
    return settings, load_gpt2_params_from_tf_ckpt(folder / "model.ckpt", settings)


def _book_get(params: Mapping[str, Any], row: conv.Row) -> np.ndarray:
    node: Any = params
    try:
        for key in row.book:
            node = node[key]
    except (KeyError, IndexError, TypeError):
        raise WeightError(f"params has no {row.book_name} (OpenAI's {row.tf})") from None
    if isinstance(node, torch.Tensor):
        node = node.detach().cpu().numpy()
    array = np.asarray(node)
    if tuple(array.shape) != row.shape:
        raise WeightError(f"params {row.book_name} ({row.tf}) has shape "
                          f"{list(array.shape)} but the model needs {list(row.shape)}")
    return array


def load_weights_into_gpt(gpt: nn.Module, params: Mapping[str, Any]) -> None:
    """Copy the book's GPT-2 `params` into `gpt` (ours or the book's GPTModel), in place.

    Every tensor's shape is checked before anything is written, so on error the model is
    unchanged. A tied head stays tied; an untied one gets `wte` as the book does."""
    V, d = gpt.tok_emb.weight.shape
    hp = {"n_vocab": V, "n_ctx": gpt.pos_emb.weight.shape[0], "n_embd": d, "n_head": 1, "n_layer": len(gpt.trf_blocks)}
    blocks = params.get("blocks") if isinstance(params, Mapping) else None
    if not isinstance(blocks, Sequence) or len(blocks) != hp["n_layer"]:
        n = len(blocks) if isinstance(blocks, Sequence) else "no"
        raise WeightError(f"params has {n} blocks but the model has {hp['n_layer']} layers")
    plan: list[tuple[nn.Module, str, torch.Tensor | np.ndarray]] = []
    for row in conv.weight_rows(hp):
        array = _book_get(params, row)
        for t in row.targets:
            module_name, _, attr = t.name.rpartition(".")
            module = gpt.get_submodule(module_name)
            current = getattr(module, attr, None)
            if current is None:
                raise WeightError(f"the model has no {t.name}: GPT-2 needs qkv_bias=True")
            if tuple(current.shape) != conv.target_shape(row, t):
                raise WeightError(f"model parameter {t.name} has shape {list(current.shape)}, GPT-2's "
                                  f"{row.tf} gives {list(conv.target_shape(row, t))}")
            plan.append((module, attr, conv.apply_target(row, t, array)))
    if gpt.out_head.weight is not gpt.tok_emb.weight:
        if tuple(gpt.out_head.weight.shape) != (V, d):
            raise WeightError(f"out_head.weight has shape {list(gpt.out_head.weight.shape)}, expected {[V, d]}")
        plan.append((gpt.out_head, "weight", plan[0][2]))
    with torch.no_grad():
        for module, attr, array in plan:
            src = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
            param = getattr(module, attr)
            if param.is_meta:
                setattr(module, attr, nn.Parameter(src.clone()))
            else:
                param.copy_(src)
    if gpt.out_head.weight is not gpt.tok_emb.weight and getattr(getattr(gpt, "cfg", None), "tie_weights", False):
        gpt.out_head.weight = gpt.tok_emb.weight
