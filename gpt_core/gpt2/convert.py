"""GPT-2 weights: the name table, shape checks, and a streaming TF-checkpoint -> safetensors
converter that runs as a script in a child process.

This file imports only the standard library and numpy at the top, so the child that runs it
(`python gpt2_convert.py ...`) starts without torch, and TensorFlow is imported only inside
`convert_tf_checkpoint`. A TensorFlow abort or segfault while reading a damaged checkpoint
then ends the child, not the app; the parent turns it into an error message.

One table (`weight_rows`) drives everything: the book's nested `params` dict, OpenAI's
TensorFlow variable names, transformers' GPT-2 keys, and our `GPTModel` parameter names.
"""
from __future__ import annotations

import json
import os
import queue
import struct
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

CACHE_FORMAT = "gpt_core.gpt2"
# 2: the matrices that generation reads one token at a time are stored input-major (Target).
CACHE_VERSION = "2"
HPARAMS_KEYS = ("n_vocab", "n_ctx", "n_embd", "n_head", "n_layer")
# One-line protocol from the child: the last stdout line starting with this prefix is JSON.
RESULT_PREFIX = "GPT2_CONVERT_RESULT "


class GPT2LoadError(ValueError):
    """GPT-2 weights could not be loaded; the message says why and what to do."""


class WeightError(GPT2LoadError):
    """A checkpoint's tensors do not fit the model (missing, unexpected, or wrong shape)."""


@dataclass(frozen=True)
class Target:
    name: str                # our GPTModel parameter, e.g. "trf_blocks.0.att.W_query.weight"
    part: int | None = None  # which third of the last axis (c_attn holds query, key, value)
    transpose: bool = False  # Conv1D weights are [in, out]; nn.Linear wants [out, in]
    # The cache stores it transposed, input-major ([in, out]; [emb, vocab] for the tied
    # embedding) and the model's parameter is a transposed view of it. Same values; decoding
    # one token multiplies one row by each matrix, and on a CPU that product streams an
    # input-major matrix from memory markedly faster (benchmarks/bench_generate.py).
    input_major: bool = False


@dataclass(frozen=True)
class Row:
    tf: str                     # OpenAI's TensorFlow variable, e.g. "model/h0/attn/c_attn/w"
    hf: str                     # transformers' key without "transformer.", e.g. "h.0.attn.c_attn.weight"
    book: tuple[Any, ...]       # path into the book's params dict, e.g. ("blocks", 0, "attn", "c_attn", "w")
    shape: tuple[int, ...]      # source shape without TF's leading 1 (that is the book's and HF's shape)
    conv1d: bool                # TF stores it with a leading 1: [1, in, out]
    targets: tuple[Target, ...]

    @property
    def tf_shape(self) -> tuple[int, ...]:
        return (1, *self.shape) if self.conv1d else self.shape

    @property
    def book_name(self) -> str:
        head, *rest = self.book
        return head + "".join(f"[{p}]" if isinstance(p, int) else f"[{p!r}]" for p in rest)


def check_hparams(hp: Any, *, where: str = "hparams.json") -> dict[str, int]:
    """The five release keys as positive integers, or ValueError saying what is wrong."""
    if not isinstance(hp, Mapping):
        raise ValueError(f"{where} must hold a JSON object with {', '.join(HPARAMS_KEYS)}")
    missing = [k for k in HPARAMS_KEYS if k not in hp]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)} (a GPT-2 release has {', '.join(HPARAMS_KEYS)})")
    out = {}
    for k in HPARAMS_KEYS:
        v = hp[k]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{where}: {k} must be a positive integer, got {v!r}")
        out[k] = v
    if out["n_embd"] % out["n_head"]:
        raise ValueError(f"{where}: n_embd ({out['n_embd']}) is not divisible by n_head ({out['n_head']})")
    return out


def weight_rows(hp: Mapping[str, int]) -> list[Row]:
    """The mapping table, in the order the release stores layers (globals, then block by block)."""
    V, C, d = hp["n_vocab"], hp["n_ctx"], hp["n_embd"]
    rows = [
        Row("model/wte", "wte.weight", ("wte",), (V, d), False, (Target("tok_emb.weight", input_major=True),)),
        Row("model/wpe", "wpe.weight", ("wpe",), (C, d), False, (Target("pos_emb.weight"),)),
    ]
    for i in range(hp["n_layer"]):
        tb, hb, bb = f"model/h{i}/", f"h.{i}.", ("blocks", i)
        ours = f"trf_blocks.{i}."
        qkv = ("att.W_query", "att.W_key", "att.W_value")
        rows += [
            Row(tb + "ln_1/g", hb + "ln_1.weight", bb + ("ln_1", "g"), (d,), False, (Target(ours + "norm1.scale"),)),
            Row(tb + "ln_1/b", hb + "ln_1.bias", bb + ("ln_1", "b"), (d,), False, (Target(ours + "norm1.shift"),)),
            Row(tb + "attn/c_attn/w", hb + "attn.c_attn.weight", bb + ("attn", "c_attn", "w"), (d, 3 * d), True,
                tuple(Target(f"{ours}{m}.weight", part=j, transpose=True, input_major=True)
                      for j, m in enumerate(qkv))),
            Row(tb + "attn/c_attn/b", hb + "attn.c_attn.bias", bb + ("attn", "c_attn", "b"), (3 * d,), False,
                tuple(Target(f"{ours}{m}.bias", part=j) for j, m in enumerate(qkv))),
            Row(tb + "attn/c_proj/w", hb + "attn.c_proj.weight", bb + ("attn", "c_proj", "w"), (d, d), True,
                (Target(ours + "att.out_proj.weight", transpose=True, input_major=True),)),
            Row(tb + "attn/c_proj/b", hb + "attn.c_proj.bias", bb + ("attn", "c_proj", "b"), (d,), False,
                (Target(ours + "att.out_proj.bias"),)),
            Row(tb + "ln_2/g", hb + "ln_2.weight", bb + ("ln_2", "g"), (d,), False, (Target(ours + "norm2.scale"),)),
            Row(tb + "ln_2/b", hb + "ln_2.bias", bb + ("ln_2", "b"), (d,), False, (Target(ours + "norm2.shift"),)),
            Row(tb + "mlp/c_fc/w", hb + "mlp.c_fc.weight", bb + ("mlp", "c_fc", "w"), (d, 4 * d), True,
                (Target(ours + "ff.layers.0.weight", transpose=True, input_major=True),)),
            Row(tb + "mlp/c_fc/b", hb + "mlp.c_fc.bias", bb + ("mlp", "c_fc", "b"), (4 * d,), False,
                (Target(ours + "ff.layers.0.bias"),)),
            Row(tb + "mlp/c_proj/w", hb + "mlp.c_proj.weight", bb + ("mlp", "c_proj", "w"), (4 * d, d), True,
                (Target(ours + "ff.layers.2.weight", transpose=True),)),
            Row(tb + "mlp/c_proj/b", hb + "mlp.c_proj.bias", bb + ("mlp", "c_proj", "b"), (d,), False,
                (Target(ours + "ff.layers.2.bias"),)),
        ]
    rows += [
        Row("model/ln_f/g", "ln_f.weight", ("g",), (d,), False, (Target("final_norm.scale"),)),
        Row("model/ln_f/b", "ln_f.bias", ("b",), (d,), False, (Target("final_norm.shift"),)),
    ]
    return rows


def target_shape(row: Row, t: Target) -> tuple[int, ...]:
    shape = list(row.shape)
    if t.part is not None:
        shape[-1] //= 3
    return tuple(reversed(shape)) if t.transpose else tuple(shape)


def apply_target(row: Row, t: Target, array: np.ndarray) -> np.ndarray:
    """Source array (the row's shape) -> our parameter's array (a view where possible)."""
    if t.part is not None:
        n = array.shape[-1] // 3
        array = array[..., t.part * n:(t.part + 1) * n]
    return array.T if t.transpose else array


def stored_array(row: Row, t: Target, array: np.ndarray) -> np.ndarray:
    """Source array -> the array the cache stores for target `t` (a view where possible)."""
    ours = apply_target(row, t, array)
    return ours.T if t.input_major else ours


def our_layout(hp: Mapping[str, int]) -> list[tuple[str, tuple[int, ...]]]:
    """Our tensors (tied head left out: it *is* tok_emb) in the order the converter writes them."""
    return [(t.name, target_shape(r, t)) for r in weight_rows(hp) for t in r.targets]


def cache_layout(hp: Mapping[str, int]) -> list[tuple[str, tuple[int, ...]]]:
    """Each tensor of the cache file with the shape it is stored in, in file order."""
    return [(t.name, tuple(reversed(target_shape(r, t))) if t.input_major else target_shape(r, t))
            for r in weight_rows(hp) for t in r.targets]


def input_major_names(hp: Mapping[str, int]) -> frozenset[str]:
    """The tensors the cache stores transposed (see `Target.input_major`)."""
    return frozenset(t.name for r in weight_rows(hp) for t in r.targets if t.input_major)


def check_source_shapes(found: Mapping[str, Sequence[int]], rows: Iterable[Row], *, kind: str = "tf",
                        allow_extra: Callable[[str], bool] = lambda name: False,
                        what: str = "the checkpoint") -> None:
    """Every tensor present with the exact shape; raise WeightError naming the first misfit."""
    rows = list(rows)
    wanted = {(r.tf if kind == "tf" else r.hf): (r.tf_shape if kind == "tf" else r.shape) for r in rows}
    for name, shape in wanted.items():
        if name not in found:
            raise WeightError(f"{what} has no tensor {name!r} (expected shape {list(shape)}); "
                              "is it an OpenAI GPT-2 checkpoint of the size hparams.json describes?")
        if tuple(found[name]) != tuple(shape):
            raise WeightError(f"tensor {name!r} in {what} has shape {list(found[name])} but the model "
                              f"described by hparams.json needs {list(shape)}")
    extra = sorted(n for n in found if n not in wanted and not allow_extra(n))
    if extra:
        raise WeightError(f"{what} has tensors a GPT-2 of this size does not: {', '.join(extra[:5])}"
                          + (" ..." if len(extra) > 5 else ""))


# --- safetensors, written one tensor at a time -------------------------------------------
def safetensors_header(layout: Sequence[tuple[str, tuple[int, ...]]], metadata: Mapping[str, str]) -> tuple[bytes, int]:
    """The file's 8-byte length, JSON header (padded to 8 bytes) and the data size that follows.

    Standard safetensors (any reader can open it); every tensor float32, little-endian."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    offset = 0
    for name, shape in layout:
        nbytes = 4 * int(np.prod(shape, dtype=np.int64))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # keeps every tensor's start aligned for zero-copy views
    return struct.pack("<Q", len(raw)) + raw, offset


class SafetensorsWriter:
    """Stream tensors into a safetensors file in a fixed order; memory is one tensor at a time."""

    def __init__(self, path: str, layout: Sequence[tuple[str, tuple[int, ...]]], metadata: Mapping[str, str]):
        self.path = path
        self._pending = list(layout)
        header, self.data_bytes = safetensors_header(layout, metadata)
        self._f = open(path, "wb")
        self._f.write(header)

    def write(self, name: str, array: np.ndarray) -> None:
        exp_name, exp_shape = self._pending.pop(0)
        if name != exp_name or tuple(array.shape) != exp_shape:
            raise WeightError(f"internal order error: got {name} {array.shape}, expected {exp_name} {exp_shape}")
        # ascontiguousarray materialises a transposed view once; '<f4' is safetensors' F32.
        self._f.write(memoryview(np.ascontiguousarray(array, dtype="<f4")).cast("B"))

    def close(self) -> None:
        if self._pending:
            self._f.close()
            raise WeightError(f"internal error: {len(self._pending)} tensors never written")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


def write_rows(writer: SafetensorsWriter, rows: Iterable[Row], read: Callable[[Row], np.ndarray]) -> None:
    for row in rows:
        array = read(row)  # the row's shape, float32
        for t in row.targets:
            writer.write(t.name, stored_array(row, t, array))
        del array


def cache_metadata(hp: Mapping[str, int], source: Mapping[str, Any]) -> dict[str, str]:
    return {"format": CACHE_FORMAT, "version": CACHE_VERSION,
            "hparams": json.dumps(dict(hp), sort_keys=True), "source": json.dumps(source, sort_keys=True)}


# --- TensorFlow side (child process) -----------------------------------------------------
def tf_variable_shapes(reader: Any) -> dict[str, tuple[int, ...]]:
    return {name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()}


def open_tf_checkpoint(prefix: str) -> Any:
    """TensorFlow's CheckpointReader, imported here and nowhere earlier."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # noqa: PLC0415 -- seconds to import; only the loader pays it

    return tf.train.load_checkpoint(prefix)


def read_tf_row(reader: Any, row: Row) -> np.ndarray:
    array = reader.get_tensor(row.tf)
    if array.dtype != np.float32:
        raise WeightError(f"tensor {row.tf!r} is {array.dtype}, expected float32")
    return array.reshape(row.shape)  # drops TF's leading 1 (a view)


def convert_tf_checkpoint(prefix: str, hp: Mapping[str, int], out_path: str, source: Mapping[str, Any]) -> None:
    """Read OpenAI's checkpoint at `prefix` tensor by tensor into a safetensors file in our names."""
    hp = check_hparams(hp)
    reader = open_tf_checkpoint(prefix)
    rows = weight_rows(hp)
    check_source_shapes(tf_variable_shapes(reader), rows, kind="tf")
    writer = SafetensorsWriter(out_path, cache_layout(hp), cache_metadata(hp, source))
    # TensorFlow reads (and checksums) the next tensor while this thread transposes and writes
    # the previous one; the small queue bounds memory to a few tensors.
    ready: queue.Queue = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for row in rows:
                ready.put(read_tf_row(reader, row))
        except BaseException as e:  # handed to the writer, which raises it
            ready.put(e)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()

    def next_array(row: Row) -> np.ndarray:
        item = ready.get()
        if isinstance(item, BaseException):
            raise item
        return item

    write_rows(writer, rows, next_array)
    thread.join()
    writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    """`python gpt2_convert.py PREFIX OUT JSON` where JSON = {"hparams": ..., "source": ...}."""
    args = list(sys.argv[1:] if argv is None else argv)
    # This process only reads a checkpoint. TensorFlow's import eagerly loads Keras' optimizers
    # inside a try/except ImportError (a third of its import time); blocking Keras here skips
    # that. Only in this child: the app's own process never changes.
    sys.modules.setdefault("keras", None)  # type: ignore[arg-type]
    try:
        prefix, out_path, spec = args
        spec = json.loads(spec)
        convert_tf_checkpoint(prefix, spec["hparams"], out_path, spec["source"])
    except Exception as e:  # reported to the parent as one line; the parent raises it
        print(RESULT_PREFIX + json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}",
                                          "shape_error": isinstance(e, WeightError)}), flush=True)
        return 1
    print(RESULT_PREFIX + json.dumps({"ok": True}), flush=True)
    return 0


def iter_result_lines(stdout: str) -> Iterator[dict[str, Any]]:
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            yield json.loads(line[len(RESULT_PREFIX):])


if __name__ == "__main__":
    sys.exit(main())
