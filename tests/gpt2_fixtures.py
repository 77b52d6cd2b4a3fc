"""Test helpers: small GPT-2 checkpoints in OpenAI's exact TensorFlow layout, and a local HTTP
server that serves files with faults on demand (dropped connections, 404, HTML error pages,
Range ignored, stalls).

`write_tf_checkpoint` imports TensorFlow (seconds): call it from module-scoped fixtures.
The benchmark uses it too, for a full-size 124M checkpoint.
"""
from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TINY_HPARAMS = {"n_vocab": 101, "n_ctx": 32, "n_embd": 16, "n_head": 2, "n_layer": 2}
# The release's `checkpoint` file, byte for byte (77 bytes).
CHECKPOINT_TEXT = 'model_checkpoint_path: "model.ckpt"\nall_model_checkpoint_paths: "model.ckpt"\n'


def release_shapes(hp: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Variable name -> shape, as in OpenAI's GPT-2 checkpoints (written independently of
    gpt_core's table so the two can check each other)."""
    V, C, d, L = hp["n_vocab"], hp["n_ctx"], hp["n_embd"], hp["n_layer"]
    shapes = {"model/wte": (V, d), "model/wpe": (C, d), "model/ln_f/g": (d,), "model/ln_f/b": (d,)}
    for i in range(L):
        h = f"model/h{i}/"
        shapes.update({
            h + "ln_1/g": (d,), h + "ln_1/b": (d,), h + "ln_2/g": (d,), h + "ln_2/b": (d,),
            h + "attn/c_attn/w": (1, d, 3 * d), h + "attn/c_attn/b": (3 * d,),
            h + "attn/c_proj/w": (1, d, d), h + "attn/c_proj/b": (d,),
            h + "mlp/c_fc/w": (1, d, 4 * d), h + "mlp/c_fc/b": (4 * d,),
            h + "mlp/c_proj/w": (1, 4 * d, d), h + "mlp/c_proj/b": (d,),
        })
    return shapes


def random_arrays(hp: dict[str, int], *, seed: int = 0, std: float = 0.2) -> dict[str, np.ndarray]:
    """Random float32 weights of the release's shapes; norms near 1 so activations stay sane."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in release_shapes(hp).items():
        if name.endswith("/g"):
            a = 1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
        else:
            a = std * rng.standard_normal(shape, dtype=np.float32)
        out[name] = a.astype(np.float32)
    return out


def write_tf_checkpoint(folder: str | Path, hp: dict[str, int] | None = None, *,
                        arrays: dict[str, np.ndarray] | None = None, seed: int = 0,
                        vocab_files: bool = True) -> dict[str, np.ndarray]:
    """Write a GPT-2 checkpoint as OpenAI released it: a tf.compat.v1 Saver's model.ckpt.*,
    the `checkpoint` file, hparams.json, and (optionally) encoder.json / vocab.bpe.
    Returns the arrays written (variable name -> array)."""
    import tensorflow as tf

    hp = dict(hp or TINY_HPARAMS)
    arrays = arrays if arrays is not None else random_arrays(hp, seed=seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        variables, assigns, feeds = {}, [], {}
        for name, a in arrays.items():
            v = tf.compat.v1.get_variable(name, shape=a.shape, dtype=tf.float32,
                                          initializer=tf.compat.v1.zeros_initializer())
            ph = tf.compat.v1.placeholder(tf.float32, shape=a.shape)
            variables[name] = v
            assigns.append(v.assign(ph))
            feeds[ph] = a
        # Values go in through feeds, not constants, so the .meta graph stays small (as released).
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(assigns, feed_dict=feeds)
            saver.save(sess, str(folder / "model.ckpt"), write_meta_graph=True)
    (folder / "checkpoint").write_text(CHECKPOINT_TEXT)
    (folder / "hparams.json").write_text(json.dumps(hp, indent=2))
    if vocab_files:
        for name in ("encoder.json", "vocab.bpe"):
            shutil.copyfile(ROOT / "gpt_core" / "assets" / "gpt2" / name, folder / name)
    return arrays


def book_params(arrays: dict[str, np.ndarray], hp: dict[str, int]) -> dict[str, Any]:
    """The book's nested params dict from variable arrays (what its loader builds)."""
    params: dict[str, Any] = {"blocks": [{} for _ in range(hp["n_layer"])]}
    for name, a in arrays.items():
        parts = name.split("/")[1:]
        target = params
        if parts[0].startswith("h"):
            target = params["blocks"][int(parts[0][1:])]
        for key in parts[1:-1]:
            target = target.setdefault(key, {})
        target[parts[-1]] = np.squeeze(a)
    return params


def hf_state_dict(arrays: dict[str, np.ndarray], hp: dict[str, int], *, prefix: str = "") -> dict[str, np.ndarray]:
    """transformers GPT2 keys (Conv1D weights stay [in, out]) from variable arrays."""
    out = {prefix + "wte.weight": arrays["model/wte"], prefix + "wpe.weight": arrays["model/wpe"],
           prefix + "ln_f.weight": arrays["model/ln_f/g"], prefix + "ln_f.bias": arrays["model/ln_f/b"]}
    names = {"ln_1/g": "ln_1.weight", "ln_1/b": "ln_1.bias", "ln_2/g": "ln_2.weight", "ln_2/b": "ln_2.bias",
             "attn/c_attn/w": "attn.c_attn.weight", "attn/c_attn/b": "attn.c_attn.bias",
             "attn/c_proj/w": "attn.c_proj.weight", "attn/c_proj/b": "attn.c_proj.bias",
             "mlp/c_fc/w": "mlp.c_fc.weight", "mlp/c_fc/b": "mlp.c_fc.bias",
             "mlp/c_proj/w": "mlp.c_proj.weight", "mlp/c_proj/b": "mlp.c_proj.bias"}
    for i in range(hp["n_layer"]):
        for tf_name, hf_name in names.items():
            a = arrays[f"model/h{i}/{tf_name}"]
            out[f"{prefix}h.{i}.{hf_name}"] = a.reshape(a.shape[1:]) if a.ndim == 3 else a
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def hf_model(arrays: dict[str, np.ndarray], hp: dict[str, int]):
    """transformers' GPT2LMHeadModel holding the same weights, in eval mode."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=hp["n_vocab"], n_positions=hp["n_ctx"], n_embd=hp["n_embd"],
                     n_layer=hp["n_layer"], n_head=hp["n_head"], activation_function="gelu_new",
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5)
    model = GPT2LMHeadModel(cfg)
    state = {k: torch.from_numpy(v) for k, v in hf_state_dict(arrays, hp).items()}
    missing, unexpected = model.transformer.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith(".attn.bias") or k.endswith("masked_bias") for k in missing), (missing, unexpected)
    model.tie_weights()
    return model.eval()


# --- a local file server with faults on demand ---------------------------------------------
class FaultyServer:
    """Serves `files` ({url path: bytes}) on 127.0.0.1 with HTTP Range support.

    `faults[path]` is a list of faults used up one per request: "drop" (close half-way),
    "404", "html" (HTML page, 200, text/html), "html-octet" (HTML body labelled as binary),
    "no_range" (answer 200 with the whole file), "stall" (send a little, then go silent),
    "hold" (wait for `release` before sending), None (serve normally).
    `always[path]` applies one fault to every request. `requests` logs (path, range, status)."""

    def __init__(self, files: dict[str, bytes], *, stall_seconds: float = 5.0):
        self.files = dict(files)
        self.faults: dict[str, list[str | None]] = defaultdict(list)
        self.always: dict[str, str] = {}
        self.requests: list[tuple[str, str | None, int]] = []
        self.stall_seconds = stall_seconds
        self.release = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server._serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, prefix: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{prefix}"

    def __enter__(self) -> "FaultyServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, path: str, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for p, _, s in self.requests if p == path and (status is None or s == status))

    def _log(self, path: str, rng: str | None, status: int) -> None:
        with self._lock:
            self.requests.append((path, rng, status))

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path, rng = h.path, h.headers.get("Range")
        with self._lock:
            queue = self.faults.get(path)
            fault = queue.pop(0) if queue else self.always.get(path)
        data = self.files.get(path)
        if fault == "404" or data is None:
            body = b'<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code></Error>'
            self._log(path, rng, 404)
            h.send_response(404)
            h.send_header("Content-Type", "application/xml")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if fault in ("html", "html-octet"):
            body = b"<!DOCTYPE html><html><body>Service unavailable, try later</body></html>"
            self._log(path, rng, 200)
            h.send_response(200)
            h.send_header("Content-Type", "text/html" if fault == "html" else "application/octet-stream")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        start = 0
        m = re.match(r"bytes=(\d+)-$", rng or "")
        if m and fault != "no_range":
            start = int(m.group(1))
            if start >= len(data):
                self._log(path, rng, 416)
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        else:
            status = 200
        body = data[start:]
        self._log(path, rng, status)
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body)))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if fault == "drop":
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        if fault == "stall":
            h.wfile.write(body[:10])
            h.wfile.flush()
            self._stop.wait(self.stall_seconds)
            return
        if fault == "hold":
            h.wfile.write(body[:10])
            h.wfile.flush()
            self.release.wait(30)
            body = body[10:]
        try:
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def release_files(folder: Path, names: Iterable[str]) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in names}


def wait_until(pred, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False
