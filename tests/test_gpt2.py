"""GPT-2 loading: small checkpoints in OpenAI's exact TensorFlow layout, compared with
transformers' GPT2LMHeadModel and the book's own loader. TensorFlow work is kept to
module-scoped fixtures and a handful of conversions."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gpt2_fixtures import (ROOT, TINY_HPARAMS, FaultyServer, book_params, hf_model, hf_state_dict,
                           random_arrays, release_shapes, write_tf_checkpoint)
from gpt_core import GPTModel
from gpt_core.config import GPTConfig
from gpt_core.gpt2 import (GPT2_FILES, GPT2LoadError, WeightError, config_from_hparams, import_gpt2, load_gpt2,
                           load_gpt2_params_from_tf_ckpt, load_weights_into_gpt)
from gpt_core.gpt2 import convert as conv
from gpt_core.gpt2.cache import CACHE_NAME, SkipInit, _run_child, read_header, valid_cache
from gpt_core.gpt2.release import DATA_FILE, INDEX_FILE, source_fingerprint

HP = TINY_HPARAMS
IDS = torch.tensor([[1, 5, 9, 42, 100, 0, 7, 3, 3, 64], [2, 2, 31, 17, 88, 99, 4, 50, 61, 11]])


def leaves(p, path=()):
    """(path, array) of every leaf of the book's nested params."""
    if isinstance(p, dict):
        for k, v in p.items():
            yield from leaves(v, path + (k,))
    elif isinstance(p, list):
        for i, v in enumerate(p):
            yield from leaves(v, path + (i,))
    else:
        yield path, p


def copy_release(src: Path, dest: Path) -> Path:
    # copyfile, not copy2: fresh mtimes, as files copied by hand would have
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(CACHE_NAME, ".*"), copy_function=shutil.copyfile)
    return dest


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(folder, arrays): a tiny GPT-2 release written by TensorFlow, and its first load."""
    folder = tmp_path_factory.mktemp("gpt2") / "tiny"
    arrays = write_tf_checkpoint(folder, HP, seed=0)
    model, cfg, tok = load_gpt2(folder)  # converts once, in a child process
    return folder, arrays, model


@pytest.fixture(scope="module")
def reference_logits(release):
    _, arrays, _ = release
    with torch.no_grad():
        return hf_model(arrays, HP)(IDS).logits


def test_release_layout_is_openai_s(release):
    folder, arrays, _ = release
    import tensorflow as tf

    found = dict(tf.train.list_variables(str(folder / "model.ckpt")))
    assert found == {k: list(v) for k, v in release_shapes(HP).items()}
    assert (folder / "checkpoint").stat().st_size == 77
    assert {p.name for p in folder.iterdir()} >= set(GPT2_FILES)


def test_loaded_model_matches_transformers_and_the_book(release, reference_logits):
    folder, arrays, model = release
    from llms_from_scratch.ch04 import GPTModel as BookGPTModel
    from llms_from_scratch.ch05 import load_gpt2_params_from_tf_ckpt as book_read
    from llms_from_scratch.ch05 import load_weights_into_gpt as book_load

    assert model.cfg == config_from_hparams(HP) and not model.training
    assert model.out_head.weight is model.tok_emb.weight  # tied, one copy
    with torch.no_grad():
        ours = model(IDS)
    torch.testing.assert_close(ours, reference_logits)

    settings = json.loads((folder / "hparams.json").read_text())
    book_model = BookGPTModel({**config_from_hparams(HP).to_dict(), "drop_rate": 0.0})
    book_load(book_model, book_read(str(folder / "model.ckpt"), settings))
    with torch.no_grad():
        torch.testing.assert_close(ours, book_model.eval()(IDS))


def test_the_cache_holds_each_tensor_once_and_any_safetensors_reader_opens_it(release):
    folder, _, model = release
    from safetensors import safe_open

    cache = folder / CACHE_NAME
    with safe_open(str(cache), framework="pt") as f:
        keys = set(f.keys())
        assert keys == {name for name, _ in conv.our_layout(HP)} and "out_head.weight" not in keys
        # What decoding streams one token at a time is stored input-major; the parameter is
        # the transposed view of the mapped bytes (no copy), the rest is stored as it is.
        w_key = model.trf_blocks[1].att.W_key.weight
        assert torch.equal(f.get_tensor("trf_blocks.1.att.W_key.weight"), w_key.t())
        assert w_key.stride() == (1, w_key.shape[0])
        assert torch.equal(f.get_tensor("tok_emb.weight"), model.tok_emb.weight.t())
        fc2 = model.trf_blocks[1].ff.layers[2].weight
        assert torch.equal(f.get_tensor("trf_blocks.1.ff.layers.2.weight"), fc2) and fc2.is_contiguous()
        assert f.metadata()["format"] == conv.CACHE_FORMAT
    assert model.num_parameters() == config_from_hparams(HP).num_parameters()


def test_a_cache_of_the_former_layout_is_rebuilt_not_misread(release, tmp_path):
    folder = copy_release(release[0], tmp_path / "copy")
    model, _, _ = load_gpt2(folder)
    cache = folder / CACHE_NAME
    header, start = read_header(cache)
    meta = dict(header["__metadata__"], version="1")  # version 1 stored every matrix [out, in]
    raw, _ = conv.safetensors_header([(k, tuple(v["shape"])) for k, v in header.items() if k != "__metadata__"], meta)
    data = cache.read_bytes()[start:]
    cache.write_bytes(raw + data)
    assert not valid_cache(cache, source_fingerprint(folder))
    again, _, _ = load_gpt2(folder)
    assert valid_cache(cache, source_fingerprint(folder))
    for name, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


def test_cache_is_tied_to_its_source_files(release, tmp_path):
    folder = copy_release(release[0], tmp_path / "copy")
    shutil.copy2(release[0] / CACHE_NAME, folder / CACHE_NAME)
    fp = source_fingerprint(folder)
    assert not valid_cache(folder / CACHE_NAME, fp)  # made from files with other mtimes
    for name in ("hparams.json", INDEX_FILE, DATA_FILE):
        st = (release[0] / name).stat()
        os.utime(folder / name, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert valid_cache(folder / CACHE_NAME, source_fingerprint(folder))
    with open(folder / CACHE_NAME, "r+b") as f:  # a cache cut short is never used
        f.truncate(1000)
    assert not valid_cache(folder / CACHE_NAME, source_fingerprint(folder))


def test_changed_source_rebuilds_the_cache_and_damaged_data_is_a_clear_error(release, tmp_path):
    folder = copy_release(release[0], tmp_path / "copy")
    shutil.copy2(release[0] / CACHE_NAME, folder / CACHE_NAME)
    cache_before = (folder / CACHE_NAME).read_bytes()
    data = bytearray((folder / DATA_FILE).read_bytes())
    data[100:140] = bytes(40)  # same size, different bytes: TensorFlow's checksum must catch it
    (folder / DATA_FILE).write_bytes(bytes(data))
    with pytest.raises(GPT2LoadError) as err:
        load_gpt2(folder)
    msg = str(err.value)
    assert "checksum" in msg.lower() and "download them again" in msg
    assert (folder / CACHE_NAME).read_bytes() == cache_before  # the old cache is left as it was
    assert not list(folder.glob("*.tmp-*"))


def test_truncated_or_foreign_files_are_refused_before_tensorflow_reads(release, tmp_path):
    folder = copy_release(release[0], tmp_path / "copy")
    size = (folder / DATA_FILE).stat().st_size
    with open(folder / DATA_FILE, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(GPT2LoadError, match=rf"has {size // 2:,} bytes .* needs {size:,}.*incomplete"):
        load_gpt2(folder)
    (folder / DATA_FILE).write_bytes(b"<!DOCTYPE html><html>Forbidden</html>" + bytes(size))
    with pytest.raises(GPT2LoadError, match="HTML"):
        load_gpt2(folder)
    shutil.copy2(release[0] / DATA_FILE, folder / DATA_FILE)
    index = (folder / INDEX_FILE).read_bytes()
    (folder / INDEX_FILE).write_bytes(index[:-10])
    with pytest.raises(GPT2LoadError, match="model.ckpt.index is damaged or incomplete"):
        load_gpt2(folder)
    shutil.copyfile(release[0] / INDEX_FILE, folder / INDEX_FILE)
    (folder / "hparams.json").write_text('{"n_vocab": 101, "n_ctx": 32}')
    with pytest.raises(GPT2LoadError, match="n_embd"):
        load_gpt2(folder)
    assert not (folder / CACHE_NAME).exists()


def test_wrong_shape_checkpoint_names_the_tensor(release, tmp_path):
    d = HP["n_embd"]
    arrays = random_arrays(HP, seed=3)
    # Same bytes, other layout (e.g. an export that wrote [out, in]): only the shape check sees it.
    arrays["model/h1/mlp/c_fc/w"] = arrays["model/h1/mlp/c_fc/w"].reshape(1, 4 * d, d)
    folder = tmp_path / "bad"
    write_tf_checkpoint(folder, HP, arrays=arrays, vocab_files=False)
    with pytest.raises(WeightError) as err:
        load_gpt2(folder)
    msg = str(err.value)
    assert "model/h1/mlp/c_fc/w" in msg and f"[1, {4 * d}, {d}]" in msg and f"[1, {d}, {4 * d}]" in msg
    with pytest.raises(WeightError, match="model/h1/mlp/c_fc/w"):
        load_gpt2_params_from_tf_ckpt(folder / "model.ckpt", HP)


@pytest.mark.parametrize("code, name", [("import os; os.abort()", "SIGABRT"),
                                        ("import ctypes; ctypes.string_at(0)", "SIGSEGV")])
def test_a_crash_in_the_reader_process_becomes_an_error_message(code, name):
    with pytest.raises(GPT2LoadError) as err:
        _run_child([sys.executable, "-c", code], what="reading the TensorFlow checkpoint in X")
    assert name in str(err.value) and "reading the TensorFlow checkpoint in X" in str(err.value)


def test_book_api_reads_the_book_s_params_and_loads_any_gpt(release, reference_logits, tmp_path):
    folder, arrays, _ = release
    from llms_from_scratch.ch04 import GPTModel as BookGPTModel
    from llms_from_scratch.ch05 import load_gpt2_params_from_tf_ckpt as book_read

    settings = json.loads((folder / "hparams.json").read_text())
    ours = load_gpt2_params_from_tf_ckpt(folder / "model.ckpt", settings)
    theirs = book_read(str(folder / "model.ckpt"), settings)

    a, b = dict(leaves(ours)), dict(leaves(theirs))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    bare = copy_release(folder, tmp_path / "bare")  # the book passes settings; hparams.json is optional
    (bare / "hparams.json").unlink()
    c = dict(leaves(load_gpt2_params_from_tf_ckpt(bare / "model.ckpt", settings)))
    assert all(np.array_equal(a[k], c[k]) for k in a)

    cfg = config_from_hparams(HP, drop_rate=0.0)
    for model in (GPTModel(cfg), BookGPTModel(cfg.to_dict()), GPTModel(cfg.replace(tie_weights=False))):
        load_weights_into_gpt(model, ours)
        with torch.no_grad():
            torch.testing.assert_close(model.eval()(IDS), reference_logits)
    tied = GPTModel(cfg)
    load_weights_into_gpt(tied, book_params(arrays, HP))
    assert tied.out_head.weight is tied.tok_emb.weight


def test_book_api_rejects_bad_params_and_leaves_the_model_unchanged(release):
    _, arrays, _ = release
    cfg = config_from_hparams(HP, drop_rate=0.0)
    model = GPTModel(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = book_params(arrays, HP)
    params["blocks"][1]["attn"]["c_attn"]["w"] = np.zeros((16, 40), np.float32)
    with pytest.raises(WeightError, match=r"blocks\[1\]\['attn'\]\['c_attn'\]\['w'\].*\[16, 40\].*\[16, 48\]"):
        load_weights_into_gpt(model, params)
    del params["blocks"][1]["attn"]["c_attn"]
    with pytest.raises(WeightError, match="c_attn"):
        load_weights_into_gpt(model, params)
    with pytest.raises(WeightError, match="1 blocks but the model has 2"):
        load_weights_into_gpt(model, {**params, "blocks": params["blocks"][:1]})
    with pytest.raises(WeightError, match="qkv_bias=True"):
        load_weights_into_gpt(GPTModel(cfg.replace(qkv_bias=False)), book_params(arrays, HP))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(GPT2LoadError, match="n_layer"):
        load_gpt2_params_from_tf_ckpt(release[0] / "model.ckpt", {"n_vocab": 101})


@pytest.mark.parametrize("prefix", ["", "transformer."])
def test_transformers_safetensors_loads_and_imports(release, reference_logits, tmp_path, prefix):
    _, arrays, _ = release
    from safetensors.numpy import save_file

    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    state = hf_state_dict(arrays, HP, prefix=prefix)
    state[prefix + "h.0.attn.bias"] = np.tril(np.ones((1, 1, 32, 32), np.float32))  # old versions save it
    save_file(state, str(hf_dir / "model.safetensors"))
    with pytest.raises(GPT2LoadError, match="config.json"):  # width 16: heads unknown without it
        load_gpt2(hf_dir / "model.safetensors")
    (hf_dir / "config.json").write_text(json.dumps({"vocab_size": 101, "n_positions": 32, "n_embd": 16,
                                                    "n_head": 2, "n_layer": 2, "activation_function": "gelu_new"}))
    model, cfg, _ = load_gpt2(hf_dir)
    with torch.no_grad():
        torch.testing.assert_close(model(IDS), reference_logits)
    folder = import_gpt2(hf_dir / "model.safetensors", models_dir=tmp_path / "models", name="tiny-hf")
    model2, _, _ = load_gpt2(folder)
    with torch.no_grad():
        torch.testing.assert_close(model2(IDS), reference_logits)
    state["lm_head.weight"] = state[prefix + "wte.weight"] + 1
    save_file(state, str(hf_dir / "model.safetensors"))
    with pytest.raises(GPT2LoadError, match="ties them"):
        load_gpt2(hf_dir)


def test_import_from_a_folder_or_uploaded_files(release, reference_logits, tmp_path):
    folder, _, _ = release
    models = tmp_path / "models"
    with pytest.raises(GPT2LoadError, match="pass a name"):
        import_gpt2(folder, models_dir=models)
    with pytest.raises(ValueError, match="plain folder name"):
        import_gpt2(folder, models_dir=models, name="../x")
    with pytest.raises(GPT2LoadError, match="lacks model.ckpt.index"):
        import_gpt2([folder / "hparams.json", folder / DATA_FILE], models_dir=models, name="up")
    assert not models.exists() or not any(models.iterdir())
    # The folder was converted already: its cache comes along and no TensorFlow runs again.
    from gpt_core.__main__ import main

    assert main(["import", str(folder), "--name", "tiny", "--models-dir", str(models)]) == 0
    uploads = [folder / n for n in GPT2_FILES] + [folder / CACHE_NAME]
    up = import_gpt2(uploads, models_dir=models, name="up")
    for name in ("tiny", "up"):
        assert (models / name / CACHE_NAME).read_bytes() == (folder / CACHE_NAME).read_bytes()
        model, _, _ = load_gpt2(models / name)
        with torch.no_grad():
            torch.testing.assert_close(model(IDS), reference_logits)
    assert up == models / "up"


def test_a_size_not_downloaded_and_download_off_says_what_to_do(tmp_path):
    with pytest.raises(GPT2LoadError, match=r"download 124M.*import"):
        load_gpt2("124M", models_dir=tmp_path, download=False)
    with pytest.raises(GPT2LoadError, match="neither a GPT-2 size"):
        load_gpt2(tmp_path / "nothing-here")
    with pytest.raises(GPT2LoadError, match="holds no GPT-2 weights"):
        load_gpt2(tmp_path)


_FRESH_PROCESS = """
import os, sys, torch
sys.path.insert(0, os.getcwd())
import gpt_core, gpt_core.gpt2, gpt_core.gpt2.download
if os.path.exists("app.py"):
    import app
assert "tensorflow" not in sys.modules, "importing gpt_core or app.py imported tensorflow"
from gpt_core.gpt2 import download_gpt2, load_gpt2
download_gpt2("355M", sys.argv[1], base_urls=[sys.argv[2], sys.argv[3]], backoff=0.01, timeout=5)
model, cfg, tok = load_gpt2("355M", models_dir=sys.argv[1], download=False)
assert "tensorflow" not in sys.modules, "loading imported tensorflow in the app's process"
ids = torch.tensor(%s)
with torch.no_grad():
    torch.save(model(ids), sys.argv[4])
"""


def test_app_import_download_and_load_in_a_fresh_process_never_import_tensorflow(release, reference_logits,
                                                                                  tmp_path):
    folder = release[0]
    files = {f"/{p}/355M/{n}": (folder / n).read_bytes() for p in ("primary", "mirror") for n in GPT2_FILES}
    with FaultyServer(files) as server:
        server.faults[f"/primary/355M/{DATA_FILE}"] = ["drop"]  # resumed from the mirror
        out = tmp_path / "logits.pt"
        code = _FRESH_PROCESS % IDS.tolist()
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "models"), server.url("/primary"),
                               server.url("/mirror"), str(out)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        half = len(files[f"/primary/355M/{DATA_FILE}"]) // 2
        assert [(r, st) for p, r, st in server.requests if p == f"/mirror/355M/{DATA_FILE}"] == [(f"bytes={half}-", 206)]
    torch.testing.assert_close(torch.load(out), reference_logits)


def test_config_from_hparams_matches_the_gpt2_presets():
    from gpt_core.config import GPT2_SIZES

    assert config_from_hparams({"n_vocab": 50257, "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12}) == GPT2_SIZES["124M"]
    assert config_from_hparams({"n_vocab": 50257, "n_ctx": 1024, "n_embd": 1600, "n_head": 25, "n_layer": 48}) == GPT2_SIZES["1558M"]
    with pytest.raises(ValueError, match="divisible"):
        config_from_hparams({"n_vocab": 5, "n_ctx": 4, "n_embd": 10, "n_head": 3, "n_layer": 1})
    assert isinstance(config_from_hparams(HP), GPTConfig)


def test_skipping_init_while_loading_does_not_touch_models_built_in_other_threads():
    import threading

    built, go = {}, threading.Event()

    def other_session() -> None:
        go.wait()
        torch.manual_seed(0)
        built["w"] = torch.nn.Linear(8, 8).weight.detach().clone()

    t = threading.Thread(target=other_session)
    t.start()
    with SkipInit():
        go.set()
        t.join()
    torch.manual_seed(0)
    assert torch.equal(built["w"], torch.nn.Linear(8, 8).weight)


def test_download_and_load_gpt2_gives_the_book_s_settings_and_params(release, tmp_path, monkeypatch):
    """The book's `download_and_load_gpt2(model_size, models_dir)`, ours and the book's, both
    fetching the fixture release from a server on 127.0.0.1."""
    import urllib.request

    import gpt_core
    import gpt_core.gpt2.release as release_files
    from llms_from_scratch.ch05 import download_and_load_gpt2 as book_download_and_load

    folder = release[0]
    files = {f"/p/355M/{n}": (folder / n).read_bytes() for n in GPT2_FILES}
    with FaultyServer(files) as server:
        openai = "https://openaipublic.blob.core.windows.net/gpt-2/models"
        real_urlopen = urllib.request.urlopen

        def local(url, *args, **kwargs):  # the book's URLs, pointed at the local server
            if isinstance(url, str) and url.startswith(openai):
                url = server.url("/p") + url[len(openai):]
            return real_urlopen(url, *args, **kwargs)

        monkeypatch.setattr(urllib.request, "urlopen", local)
        monkeypatch.setattr(release_files, "GPT2_BASE_URLS", (server.url("/p"),))
        settings, params = gpt_core.download_and_load_gpt2("355M", tmp_path / "ours")
        book_settings, book_params_ = book_download_and_load("355M", str(tmp_path / "book"))
    assert settings == book_settings == json.loads((folder / "hparams.json").read_text())

    a, b = dict(leaves(params)), dict(leaves(book_params_))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    cfg = config_from_hparams(settings, drop_rate=0.0)
    model = GPTModel(cfg)
    gpt_core.load_weights_into_gpt(model, params)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(IDS), release[2](IDS))
