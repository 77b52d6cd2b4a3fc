"""The AVX512_BF16 one-row product of Fast-mode generation: its numbers, where it runs, and
what happens where it can't (no such CPU, no compiler, a compiler that fails, turned off)."""
from __future__ import annotations

import stat

import pytest
import torch

from gpt_core import bf16_matvec
from gpt_core.generate import generate
from gpt_core.model import GPTModel
from gpt_core.precision import read_cpu_flags


@pytest.fixture(autouse=True)
def fresh_kernel(tmp_path, monkeypatch):
    """Each test builds into a folder of its own and looks again under its own environment."""
    monkeypatch.setenv("GPT_CORE_KERNELS_DIR", str(tmp_path / "kernels"))
    monkeypatch.delenv("GPT_CORE_NATIVE", raising=False)
    bf16_matvec.reset()
    yield
    bf16_matvec.reset()


needs_kernel = pytest.mark.skipif("avx512_bf16" not in read_cpu_flags() or bf16_matvec._compiler() is None,
                                  reason="needs a CPU with AVX512_BF16 and a C compiler")


def _reference(weight, x, bias):
    """The same sums in float32 from the same bfloat16 inputs."""
    out = weight.float() @ x.float()
    return out if bias is None else out + bias.float()


@needs_kernel
@pytest.mark.parametrize("out_features, in_features", [(4, 32), (7, 45), (97, 64), (768, 768), (3, 3100), (50, 1)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_kernel_sums_in_float32_and_rounds_as_torch_rounds(out_features, in_features, with_bias):
    torch.manual_seed(0)
    weight = torch.randn(out_features, in_features).bfloat16()
    x = torch.randn(in_features).bfloat16()
    bias = torch.randn(out_features).bfloat16() if with_bias else None
    wide = bf16_matvec.matvec(weight, x, bias, out_dtype=torch.float32)
    narrow = bf16_matvec.matvec(weight, x, bias)
    assert wide.dtype == torch.float32 and narrow.dtype == torch.bfloat16
    # Products of two bfloat16 values are exact in float32; only the order of the sums differs.
    torch.testing.assert_close(wide, _reference(weight, x, bias), rtol=1e-5, atol=1e-4 * in_features ** 0.5)
    assert torch.equal(narrow, wide.to(torch.bfloat16))  # round to nearest even, as torch does
    assert "AVX512_BF16 kernel" in bf16_matvec.status() and bf16_matvec.available()


@needs_kernel
def test_special_values_pass_through():
    weight = torch.ones(4, 64, dtype=torch.bfloat16)
    x = torch.ones(64, dtype=torch.bfloat16)
    x[3] = float("nan")
    out = bf16_matvec.matvec(weight, x, out_dtype=torch.float32)
    assert torch.isnan(out).all()
    x = torch.full((64,), 3e38, dtype=torch.bfloat16)
    assert torch.isinf(bf16_matvec.matvec(weight, x)).all()  # overflow rounds to infinity


@needs_kernel
def test_it_declines_what_it_cannot_read():
    weight = torch.randn(8, 64).bfloat16()
    x = torch.randn(64).bfloat16()
    assert bf16_matvec.matvec(weight.t().contiguous().t(), x) is None  # not row-major
    assert bf16_matvec.matvec(weight.float(), x) is None
    assert bf16_matvec.matvec(weight, x.float()) is None
    assert bf16_matvec.matvec(weight, x[:32]) is None
    assert bf16_matvec.matvec(weight, x, torch.zeros(7, dtype=torch.bfloat16)) is None
    assert bf16_matvec.matvec(weight, x, out_dtype=torch.float16) is None
    assert bf16_matvec.matvec(weight.requires_grad_(), x) is None


@needs_kernel
def test_built_once_then_loaded_from_its_folder(tmp_path, monkeypatch):
    assert bf16_matvec.matvec(torch.ones(4, 32, dtype=torch.bfloat16), torch.ones(32, dtype=torch.bfloat16)) is not None
    built = list((tmp_path / "kernels").glob("bf16_matvec-*.so"))
    assert len(built) == 1 and list((tmp_path / "kernels").iterdir()) == built  # no temporary file left
    # The next process finds it there and runs no compiler: running one would fail the test.
    def no_compiler(*args, **kwargs):
        raise AssertionError(f"the compiler ran again: {args}")
    monkeypatch.setattr(bf16_matvec.subprocess, "run", no_compiler)
    bf16_matvec.reset()
    assert "AVX512_BF16 kernel" in bf16_matvec.status()
    assert bf16_matvec.build(bf16_matvec._compiler(), tmp_path / "kernels") == built[0]


def test_a_compiler_that_fails_leaves_torch_in_charge(tmp_path, monkeypatch):
    monkeypatch.setattr(bf16_matvec, "read_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    failing = tmp_path / "cc"
    failing.write_text("#!/bin/sh\necho 'cc: error: unrecognized option -mavx512bf16' >&2\nexit 1\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CC", str(failing))
    assert bf16_matvec.matvec(torch.ones(4, 32, dtype=torch.bfloat16), torch.ones(32, dtype=torch.bfloat16)) is None
    assert bf16_matvec.status() == ("one-row bfloat16 products: torch.mv (it could not be built: "
                                    "cc: error: unrecognized option -mavx512bf16)")
    assert not list((tmp_path / "kernels").glob("*"))  # no half-written library left to load later


@pytest.mark.parametrize("setting, reason", [
    ({"GPT_CORE_NATIVE": "0"}, "turned off (GPT_CORE_NATIVE=0)"),
    ({"flags": frozenset({"avx512f"})}, "this CPU has no AVX512_BF16"),
    ({"compiler": None}, "no C compiler to build it with"),
])
def test_where_it_cannot_run_generation_keeps_torch_and_says_why(setting, reason, monkeypatch):
    if "GPT_CORE_NATIVE" in setting:
        monkeypatch.setenv("GPT_CORE_NATIVE", setting["GPT_CORE_NATIVE"])
    if "flags" in setting:
        monkeypatch.setattr(bf16_matvec, "read_cpu_flags", lambda: setting["flags"])
    if "compiler" in setting:
        monkeypatch.setattr(bf16_matvec, "read_cpu_flags", lambda: frozenset({"avx512_bf16"}))
        monkeypatch.setattr(bf16_matvec, "_compiler", lambda: None)
    assert bf16_matvec.matvec(torch.ones(4, 32, dtype=torch.bfloat16), torch.ones(32, dtype=torch.bfloat16)) is None
    assert bf16_matvec.status() == f"one-row bfloat16 products: torch.mv ({reason})"
    assert not bf16_matvec.available()
    torch.manual_seed(1)
    model = GPTModel({"vocab_size": 97, "context_length": 32, "emb_dim": 64, "n_heads": 4, "n_layers": 2,
                      "drop_rate": 0.0, "qkv_bias": True}).eval()
    out = generate(model, torch.tensor([[1, 2, 3]]), 10, precision="bfloat16")
    assert out.shape == (1, 13)


@needs_kernel
def test_generation_with_the_kernel_follows_torchs_bfloat16_product(monkeypatch):
    """One-row steps through the kernel give the logits torch.mv gives, within bfloat16's
    rounding, and the same greedy tokens on a model whose choices are clear."""
    torch.manual_seed(2)
    model = GPTModel({"vocab_size": 97, "context_length": 48, "emb_dim": 64, "n_heads": 4, "n_layers": 2,
                      "drop_rate": 0.0, "qkv_bias": True}).eval()
    ids = torch.tensor([[5, 17, 3, 44]])
    calls = []
    kernel_matvec = bf16_matvec.matvec

    def counted(*args, **kwargs):
        out = kernel_matvec(*args, **kwargs)
        calls.append(out is not None)
        return out
    monkeypatch.setattr(bf16_matvec, "matvec", counted)

    def logits():
        with torch.inference_mode():
            cache = model.new_kv_cache(1, dtype=torch.bfloat16, decode_weights=True)
            model.next_token_logits(ids[:, :-1], kv_cache=cache)
            return model.next_token_logits(ids[:, -1:], kv_cache=cache).float()

    fast = logits()
    # The prefill's head (its last position only), then every product of the one-row step:
    # q, k, v, out, fc1 and fc2 in each block, and the head; all of them through the kernel.
    assert calls == [True] * (1 + 2 * 6 + 1)
    monkeypatch.setenv("GPT_CORE_NATIVE", "0")
    bf16_matvec.reset()
    plain = logits()
    torch.testing.assert_close(fast, plain, rtol=0.02, atol=0.02)
    monkeypatch.delenv("GPT_CORE_NATIVE")
    bf16_matvec.reset()
    with_kernel_tokens = generate(model, ids, 12, precision="bfloat16")
    monkeypatch.setenv("GPT_CORE_NATIVE", "0")
    bf16_matvec.reset()
    assert torch.equal(with_kernel_tokens, generate(model, ids, 12, precision="bfloat16"))
