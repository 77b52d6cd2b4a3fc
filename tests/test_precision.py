"""Exact or fast: which precision a run picks on which hardware, bfloat16 training and
generation against float32, the fused head + loss under autocast, the input-major decoding
weights, utilisation, and the CUDA rules (as functions of a device description here; on a
GPU for real where one is present)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt_core import fused_loss
from gpt_core.config import GPT_CONFIG_124M, GPTConfig, TrainConfig
from gpt_core.decoding import (INPUT_MAJOR, DecodeWeights, decode_copy_bytes, decode_weights, is_input_major,
                               kept_decode_weights, release_decode_weights)
from gpt_core.device import allows_tf32, attention_backends, step_settings, to_device, transfer_for
from gpt_core.generate import generate
from gpt_core.model import GPTModel
from gpt_core.precision import Hardware, Precision, cpu_bf16_instructions, hardware_of, resolve_precision
from gpt_core.prepare import make_optimizer, prepare_training
from gpt_core.tokenizers import CharTokenizer
from gpt_core.train_events import SampleEvent, StepEvent, format_event
from gpt_core.utilisation import flops_per_token, measure_matmul_flops, peak_flops

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
TINY = GPTConfig(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)
EXACT, FAST = Precision("float32", "float32", ""), Precision("bfloat16", "bfloat16", "")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models are all overhead; a shared CPU makes two threads wait
    yield
    torch.set_num_threads(threads)


# --- which precision, and why ------------------------------------------------------------------
@pytest.mark.parametrize("capability, flags, expected", [
    ("AVX512", {"avx512f", "avx512_bf16"}, "AVX512_BF16"),
    ("AVX512", {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, "AMX"),
    ("AMX", set(), "AMX"),  # a torch that names AMX in its capability string
    ("AVX512_BF16", set(), "AVX512_BF16"),
    ("AVX512", {"avx512f", "avx512bw"}, None),  # AVX512 without its BF16 extension
    ("AVX2", {"avx2", "fma"}, None),
    ("DEFAULT", {"fp", "asimd", "bf16", "sve"}, "BF16"),  # Arm's Features line
    ("", set(), None),
])
def test_cpu_bf16_instructions_from_capability_and_flags(capability, flags, expected):
    assert cpu_bf16_instructions(capability, flags) == expected


@pytest.mark.parametrize("hardware, expected, why", [
    (Hardware("cpu", "AVX512", frozenset({"avx512_bf16"})), "bfloat16", "AVX512_BF16"),
    (Hardware("cpu", "AVX512", frozenset({"amx_bf16", "amx_tile"})), "bfloat16", "AMX"),
    (Hardware("cpu", "AVX2", frozenset({"avx2"})), "float32", "no bfloat16 instructions"),
    (Hardware("cuda", cuda_bf16=True, cuda_capability=(9, 0), name="NVIDIA H200"), "bfloat16", "H200"),
    (Hardware("cuda", cuda_bf16=False, cuda_capability=(7, 5), name="Tesla T4"), "float32", "T4"),
    (Hardware("mps", name="MPS"), "float32", "MPS"),
])
def test_auto_picks_bfloat16_only_where_it_is_native(hardware, expected, why):
    choice = resolve_precision("auto", hardware)
    assert choice.name == expected and choice.requested == "auto"
    assert why in choice.reason and choice.reason.startswith("auto: ")
    assert choice.dtype == (torch.bfloat16 if expected == "bfloat16" else torch.float32)


def test_explicit_choices_and_what_they_become():
    t4 = Hardware("cuda", cuda_bf16=False, cuda_capability=(7, 5), name="Tesla T4")
    a100 = Hardware("cuda", cuda_bf16=True, cuda_capability=(8, 0), name="A100")
    plain_cpu = Hardware("cpu", "AVX2", frozenset({"avx2"}))
    assert resolve_precision("float32", a100).exact
    assert resolve_precision("tf32", a100).name == "tf32"
    assert resolve_precision("tf32", t4).name == "float32" and "Ampere" in resolve_precision("tf32", t4).reason
    assert resolve_precision("tf32", plain_cpu).name == "float32"
    emulated = resolve_precision("bfloat16", plain_cpu)  # asked for: given, and said to be slow
    assert emulated.name == "bfloat16" and "emulated" in emulated.reason
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, auto, tf32"):
        resolve_precision("fp16", a100)
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="bf16")
    with pytest.raises(ValueError, match="compile must be true or false"):
        TrainConfig(compile="yes")


def test_this_machine_is_described_from_its_own_flags():
    hw = hardware_of("cpu")
    native = cpu_bf16_instructions(hw.cpu_capability, hw.cpu_flags) is not None
    assert resolve_precision("auto", hw).name == ("bfloat16" if native else "float32")
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        text = f.read()
    if "avx512_bf16" in text or "amx_bf16" in text:
        assert native


def test_books_presets_stay_exact_by_default():
    from gpt_core.config import PRESETS
    assert TrainConfig().precision == "float32" and not TrainConfig().compile
    for preset in PRESETS.values():
        assert preset.train_config().precision == "float32", preset.name


# --- the CUDA rules, as functions of the device -------------------------------------------------
def test_cuda_rules_as_functions_of_the_device():
    assert transfer_for("cuda") == transfer_for("cuda:1") and transfer_for("cuda").pin and transfer_for("cuda").non_blocking
    assert not transfer_for("cpu").pin and not transfer_for("cpu").non_blocking
    assert not allows_tf32(EXACT, "cuda")  # the book's numbers: no TF32
    assert allows_tf32(FAST, "cuda") and allows_tf32(Precision("tf32", "tf32", ""), "cuda")
    assert not allows_tf32(FAST, "cpu")
    from torch.nn.attention import SDPBackend
    assert attention_backends(EXACT, "cuda", dropout=True) == [SDPBackend.MATH]  # the book's dropout draw
    assert attention_backends(EXACT, "cuda", dropout=False) is None
    assert attention_backends(FAST, "cuda", dropout=True) is None  # flash attention's to choose
    assert attention_backends(EXACT, "cpu", dropout=True) is None
    before = torch.backends.cuda.matmul.allow_tf32
    with step_settings(FAST, "cpu", dropout=True):  # nothing process-wide changes on a CPU run
        assert torch.backends.cuda.matmul.allow_tf32 == before
    x = torch.arange(4)
    assert to_device(x, "cpu") is x


@needs_cuda
def test_on_cuda_tf32_follows_the_precision_and_batches_arrive_pinned():
    from gpt_core.device import _get_tf32
    before = _get_tf32()
    with step_settings(FAST, "cuda"):
        assert _get_tf32()
    with step_settings(EXACT, "cuda"):
        assert not _get_tf32()
    assert _get_tf32() == before
    x = torch.arange(1000)
    y = to_device(x, "cuda")
    assert y.device.type == "cuda" and torch.equal(y.cpu(), x)


@needs_cuda
def test_on_cuda_both_precisions_train_and_generate():
    for precision in ("float32", "bfloat16", "tf32"):
        trainer, events = _run(precision, device="cuda", max_steps=8)
        assert trainer.device.type == "cuda" and not any(e.kind == "error" for e in events)
        steps = [e for e in events if isinstance(e, StepEvent)]
        assert steps[-1].loss < steps[0].loss and steps[-1].peak_flops > 0
        model = trainer.model.eval()
        ids = torch.randint(0, model.cfg.vocab_size, (1, 12), device="cuda")
        with torch.no_grad():
            full = model(ids)
        dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        fast, cache = _cached_logits(model, ids, dtype=dtype, decode_weights=True)
        assert cache.keys.device.type == "cuda" and cache.keys.dtype == dtype and cache.weights.copied_bytes >= 0
        tolerance = dict(rtol=0.05, atol=0.05) if dtype == torch.bfloat16 else dict(rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fast.float(), full, **tolerance)
        out = generate(model, ids[:, :4], 16, precision="bfloat16" if precision == "bfloat16" else "float32")
        assert out.shape == (1, 20) and out.device.type == "cuda"


# --- the fused head + loss under autocast ------------------------------------------------------------
def _head_case(n=300, d=32, vocab=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=g, requires_grad=True)
    weight = (0.2 * torch.randn(vocab, d, generator=g)).requires_grad_()
    targets = torch.randint(0, vocab, (n,), generator=g)
    return hidden, weight, targets


def _loss_and_grads(fn, hidden, weight, targets):
    h, w = hidden.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    loss = fn(h, w, targets)
    loss.backward()
    return loss.detach(), h.grad, w.grad


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("block_logits", [fused_loss.MIXED_BLOCK_LOGITS, 128 * 70])  # one block, or 8
def test_fused_loss_in_bfloat16_matches_the_unfused_under_autocast(label_smoothing, block_logits, monkeypatch):
    monkeypatch.setattr(fused_loss, "MIXED_BLOCK_LOGITS", block_logits)
    hidden, weight, targets = _head_case()

    def fused(h, w, t):
        return fused_loss.fused_linear_cross_entropy(h, w, t, label_smoothing=label_smoothing, chunk_tokens=128)

    def plain(h, w, t):
        return F.cross_entropy(h @ w.t(), t, label_smoothing=label_smoothing)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        f_loss, f_h, f_w = _loss_and_grads(fused, hidden, weight, targets)
        p_loss, p_h, p_w = _loss_and_grads(plain, hidden, weight, targets)
        with torch.no_grad():  # evaluation: the loss alone, slice by slice
            eval_loss = fused(hidden, weight, targets)
    # float32 loss and gradients of float32 leaves, whatever the products were
    assert f_loss.dtype == eval_loss.dtype == f_h.dtype == f_w.dtype == torch.float32
    torch.testing.assert_close(f_loss, p_loss, rtol=5e-3, atol=5e-3)
    torch.testing.assert_close(eval_loss, f_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f_h, p_h, rtol=2e-2, atol=2e-4)
    torch.testing.assert_close(f_w, p_w, rtol=2e-2, atol=2e-4)
    # ... and close to the float32 truth: bfloat16 products, float32 log-sum-exp
    e_loss, e_h, e_w = _loss_and_grads(plain, hidden, weight, targets)
    torch.testing.assert_close(f_loss, e_loss, rtol=5e-3, atol=5e-3)
    assert F.cosine_similarity(f_w.flatten(), e_w.flatten(), dim=0) > 0.999


def test_fused_bfloat16_gradient_keeps_a_confident_targets_entry():
    """Where the model is sure (p of the target near 1), the gradient's target entry p - 1 is
    small; taken from a bfloat16 p it would be mostly rounding. It comes from the float32
    logit, so the hidden gradient keeps its direction and its size."""
    hidden, weight, _ = _head_case(n=32, d=64, vocab=300, seed=4)
    targets = torch.randperm(300, generator=torch.Generator().manual_seed(4))[:32]  # one token each
    with torch.no_grad():  # make every target the clear favourite: p about 0.999
        weight[targets] += 0.25 * hidden.detach()
    truth = _loss_and_grads(lambda h, w, t: F.cross_entropy(h @ w.t(), t), hidden, weight, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = _loss_and_grads(lambda h, w, t: fused_loss.fused_linear_cross_entropy(h, w, t, chunk_tokens=32),
                                hidden, weight, targets)
    assert truth[0] < 0.01  # confident indeed
    torch.testing.assert_close(fused[0], truth[0], rtol=0.1, atol=5e-3)
    for got, want in zip(fused[1:], truth[1:]):
        assert F.cosine_similarity(got.flatten(), want.flatten(), dim=0) > 0.99
        assert abs(got.norm() / want.norm() - 1) < 0.05


def test_fused_loss_in_float32_is_the_plain_loss():
    hidden, weight, targets = _head_case()
    f_loss, f_h, f_w = _loss_and_grads(
        lambda h, w, t: fused_loss.fused_linear_cross_entropy(h, w, t, chunk_tokens=128), hidden, weight, targets)
    p_loss, p_h, p_w = _loss_and_grads(lambda h, w, t: F.cross_entropy(h @ w.t(), t), hidden, weight, targets)
    torch.testing.assert_close(f_loss, p_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(f_h, p_h, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(f_w, p_w, rtol=1e-5, atol=1e-7)
    # Autocast switched off is float32 itself, to the bit.
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        again = _loss_and_grads(lambda h, w, t: fused_loss.fused_linear_cross_entropy(h, w, t, chunk_tokens=128),
                                hidden, weight, targets)
    assert all(torch.equal(a, b) for a, b in zip(again, (f_loss, f_h, f_w)))


# --- bfloat16 training --------------------------------------------------------------------------
TEXT = ("It had always been his fate to have women say such things of him: the fact should be set down "
        "in extenuation. What struck me now was that, for the first time, he resented the tone. ") * 12


def _run(precision: str, **options):
    tok = CharTokenizer.from_text(TEXT)
    config = TrainConfig(num_epochs=3, batch_size=4, learning_rate=3e-3, eval_freq=4, eval_iter=2,
                         sample_tokens=8, precision=precision, seed=7, **options)
    trainer = prepare_training(TEXT, tokenizer=tok, model_config=TINY.replace(vocab_size=tok.n_vocab),
                               config=config)
    events = list(trainer.run())
    return trainer, events


def test_bfloat16_training_learns_and_stays_close_to_float32():
    exact, exact_events = _run("float32")
    fast, fast_events = _run("bfloat16")
    assert fast.precision.name == "bfloat16" and exact.precision.exact
    assert [e.kind for e in fast_events] == [e.kind for e in exact_events]  # the same run, event for event
    losses = {name: [e.loss for e in events if isinstance(e, StepEvent)]
              for name, events in (("exact", exact_events), ("fast", fast_events))}
    assert losses["fast"][-1] < losses["fast"][0] - 1.0  # it learns
    assert abs(losses["fast"][-1] - losses["exact"][-1]) < 0.15  # ... about as fast as float32
    assert abs(fast.state.val_losses[-1] - exact.state.val_losses[-1]) < 0.15
    # Mixed precision, not a bfloat16 model: weights and AdamW's moments stay float32.
    assert all(p.dtype == torch.float32 for p in fast.model.parameters())
    moments = [t for s in fast.optimizer.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0]
    assert moments and all(t.dtype == torch.float32 for t in moments)
    steps = [e for e in fast_events if isinstance(e, StepEvent)]
    assert all(e.precision == "bfloat16" and e.flops_per_sec > 0 and e.peak_flops > 0 for e in steps)
    assert "of this machine's bfloat16 peak" in format_event(steps[-1])


def test_a_runs_replay_frames_are_generated_in_its_own_precision(monkeypatch):
    """A Fast run's frames come from the bfloat16 decoding its samples use (half the bytes a
    token); an exact run's stay the book's float32 greedy tokens."""
    import gpt_core.train as train_module

    asked = []
    real = train_module.capture_frame

    def recording(*args, **kwargs):
        asked.append(kwargs.get("precision"))
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "capture_frame", recording)
    for precision in ("bfloat16", "float32"):
        trainer, _ = _run(precision, timeline=True)
        assert trainer.state.timeline  # frames were made
    evals = len(trainer.state.timeline)
    assert asked == ["bfloat16"] * evals + ["float32"] * evals


def test_a_runs_epoch_samples_are_decoded_in_its_own_precision(monkeypatch):
    """A Fast run's epoch-end samples are the cached bfloat16 greedy tokens (the decoding its
    frames and the Generate tab use); an exact run's are the book's `generate_text_simple`."""
    import gpt_core.evaluation as evaluation
    from gpt_core.evaluation import generate_sample
    from gpt_core.generate import generate_text_simple, text_to_token_ids, token_ids_to_text

    book_calls = []

    def the_books(*args, **kwargs):
        book_calls.append(1)
        return generate_text_simple(*args, **kwargs)

    monkeypatch.setattr(evaluation, "generate_text_simple", the_books)
    for precision in ("bfloat16", "float32"):
        book_calls.clear()
        trainer, events = _run(precision)
        assert len(book_calls) == (0 if precision == "bfloat16" else 3)
        samples = [e for e in events if isinstance(e, SampleEvent)]
        assert len(samples) == 3  # one an epoch
        model, tok, ctx = trainer.model, trainer.tokenizer, trainer.config.start_context
        ids = text_to_token_ids(ctx, tok)
        with torch.no_grad():
            expected = (generate(model.eval(), ids, 8, temperature=0.0, precision="bfloat16")
                        if precision == "bfloat16" else generate_text_simple(model.eval(), ids, 8, TINY.context_length))
        # The last epoch's sample is of the final model: decoding it again gives the same text.
        assert samples[-1].text == token_ids_to_text(expected, tok)
        assert generate_sample(model, tok, "cpu", ctx, 8, precision=precision) == samples[-1].text


def test_float32_run_is_unchanged_by_the_precision_code():
    """The exact path takes no autocast at all: the same numbers as a run that never heard of it."""
    a, a_events = _run("float32")
    torch.manual_seed(0)  # a probe or a bfloat16 run in between must not move the seeded stream
    peak_flops("cpu", FAST)
    b, b_events = _run("float32")
    assert [getattr(e, "loss", None) for e in a_events] == [getattr(e, "loss", None) for e in b_events]
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))


# --- generation: bfloat16 and input-major ----------------------------------------------------------
def _tiny_model(seed=3, **changes):
    torch.manual_seed(seed)
    return GPTModel(TINY.replace(**changes)).eval()


def _cached_logits(model, ids, **cache_options):
    with torch.inference_mode():
        cache = model.new_kv_cache(ids.shape[0], **cache_options)
        prefill = model.next_token_logits(ids[:, :-3], kv_cache=cache, all_positions=True)
        steps = [model.next_token_logits(ids[:, i:i + 1], kv_cache=cache) for i in range(ids.shape[1] - 3, ids.shape[1])]
    return torch.cat([prefill, torch.stack(steps, dim=1)], dim=1), cache


def test_bfloat16_generation_uses_a_bfloat16_cache_and_tracks_float32():
    model = _tiny_model(qkv_bias=True)
    ids = torch.randint(0, 97, (2, 12))
    with torch.no_grad():
        full = model(ids)
    fast, cache = _cached_logits(model, ids, dtype=torch.bfloat16, decode_weights=True)
    assert cache.keys.dtype == cache.values.dtype == torch.bfloat16 and cache.weights.dtype == torch.bfloat16
    assert fast.dtype == torch.bfloat16
    torch.testing.assert_close(fast.float(), full, rtol=0.05, atol=0.05)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the model itself untouched
    out = generate(model, ids[:1, :4], 20, precision="bfloat16")
    assert out.shape == (1, 24) and int(out.max()) < 97
    sampled = generate(model, ids[:1, :4], 20, precision="bfloat16", temperature=1.0, top_k=5, seed=1)
    assert torch.equal(sampled, generate(model, ids[:1, :4], 20, precision="bfloat16", temperature=1.0, top_k=5, seed=1))
    with pytest.raises(ValueError, match="decode_weights=True"):
        model.new_kv_cache(1, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="precision must be one of"):
        generate(model, ids[:1, :4], 2, precision="half")


def test_exact_greedy_tokens_are_the_books():
    from llms_from_scratch.ch04 import GPTModel as BookGPTModel
    from llms_from_scratch.ch05 import generate as book_generate
    torch.manual_seed(123)
    cfg = TINY.replace(vocab_size=50257, drop_rate=0.1)
    ours = GPTModel(cfg).eval()
    torch.manual_seed(123)
    book = BookGPTModel(cfg.to_dict()).eval()
    prompt = torch.tensor([[6109, 3626, 6100, 345]])
    expected = book_generate(book, prompt, 30, cfg.context_length)  # past the window of 16
    assert torch.equal(generate(ours, prompt, 30), expected)
    assert torch.equal(generate(ours, prompt, 30, precision="float32", use_cache=False), expected)


def test_input_major_decoding_weights_match_the_plain_path_before_and_after_training():
    model = _tiny_model()
    ids = torch.randint(0, 97, (2, 12))
    weights = DecodeWeights(model)
    for block in model.trf_blocks:
        for name, module in block.named_modules():
            if isinstance(module, torch.nn.Linear):
                w, _ = weights._by_module[id(module)]
                assert is_input_major(w) == (name in INPUT_MAJOR), name
                assert torch.equal(w, module.weight)  # same values, another layout
    assert weights.copied_bytes > 0 and not any(is_input_major(p) for p in model.parameters())

    def compare():
        plain, _ = _cached_logits(model, ids)
        fast, cache = _cached_logits(model, ids, decode_weights=True)
        assert cache.weights is not None and cache.keys.dtype == torch.float32
        with torch.no_grad():
            full = model(ids)
        torch.testing.assert_close(fast, plain)
        torch.testing.assert_close(fast, full)
        return fast

    before = compare()
    kept = decode_weights(model, torch.float32)
    assert decode_weights(model, torch.float32) is kept  # the next generation reuses the copies
    model.train()
    optimizer = make_optimizer(model, TrainConfig(learning_rate=1e-2))  # fused AdamW: no version bump
    loss = F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    optimizer.step()
    model.eval()
    assert decode_weights(model, torch.float32) is not kept  # ... until an optimizer wrote the weights
    after = compare()  # a new generation reads the trained weights
    assert not torch.allclose(before, after)
    kept = decode_weights(model, torch.float32)
    model.load_state_dict(_tiny_model(seed=11).state_dict())  # so does a state dict read in
    assert decode_weights(model, torch.float32) is not kept
    compare()
    release_decode_weights(model)
    assert "_decode_weights" not in model.__dict__ and kept_decode_weights(model) is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_what_the_decoding_copies_cost_is_known_before_they_are_made(dtype):
    from gpt_core.bigram import BigramConfig, BigramLanguageModel

    model = _tiny_model()
    predicted = decode_copy_bytes(model, dtype)
    assert kept_decode_weights(model) is None  # nothing copied to say it
    kept = decode_weights(model, dtype)
    assert predicted == kept.copied_bytes > 0 and kept_decode_weights(model) is kept
    assert decode_copy_bytes(model, dtype) == predicted  # what the kept copies hold
    assert decode_copy_bytes(BigramLanguageModel(BigramConfig(vocab_size=5, context_length=4)), dtype) == 0


def test_gpt2_read_from_its_cache_decodes_without_copies(tmp_path):
    from safetensors.numpy import save_file

    from gpt_core.gpt2 import convert as conv
    from gpt_core.gpt2 import load_gpt2
    from gpt2_fixtures import TINY_HPARAMS, hf_state_dict, random_arrays
    hp = TINY_HPARAMS
    save_file(hf_state_dict(random_arrays(hp), hp), str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({
        "vocab_size": hp["n_vocab"], "n_positions": hp["n_ctx"], "n_embd": hp["n_embd"],
        "n_head": hp["n_head"], "n_layer": hp["n_layer"], "activation_function": "gelu_new"}))
    model, _, _ = load_gpt2(tmp_path, cache_dir=tmp_path)
    assert DecodeWeights(model).copied_bytes == 0 == decode_copy_bytes(model, torch.float32)  # stored input-major
    # One rule: the cache stores input-major exactly what decoding reads input-major.
    assert conv.input_major_names(hp) == {"tok_emb.weight"} | {
        f"trf_blocks.{i}.{m}.weight" for i in range(hp["n_layer"]) for m in INPUT_MAJOR}
    bf16 = DecodeWeights(model, torch.bfloat16)
    assert 0 < bf16.copied_bytes <= sum(p.numel() for p in model.parameters()) * 2
    assert decode_copy_bytes(model, torch.bfloat16) == bf16.copied_bytes


# --- utilisation ---------------------------------------------------------------------------------
def test_flops_per_token_as_nanogpt_counts_them():
    cfg = GPTConfig.from_dict(GPT_CONFIG_124M)
    L, H, Q, T, d, V = 12, 12, 64, 256, 768, 50257
    # nanoGPT: 6N + 12LHQT, N without the position embedding; our untied head is a product,
    # our token embedding a lookup.
    n_products = cfg.num_parameters() - V * d - T * d
    assert flops_per_token(cfg) == 6 * n_products + 12 * L * H * Q * T
    tied = cfg.replace(tie_weights=True)
    assert flops_per_token(tied) == flops_per_token(cfg)  # the same products, one matrix fewer
    assert flops_per_token(cfg, 128) == flops_per_token(cfg) - 12 * L * H * Q * 128


def test_peak_is_measured_once_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    first = peak_flops("cpu", EXACT)
    assert torch.equal(torch.get_rng_state(), state)
    assert peak_flops("cpu", EXACT) == first  # cached: the same number, not a new probe
    probe = measure_matmul_flops("cpu", EXACT, size=128, seconds=0.0)
    assert math.isfinite(probe) and probe > 0


# --- torch.compile ---------------------------------------------------------------------------------
def _compiler_works() -> bool:
    try:
        f = torch.compile(lambda x: x * 2 + 1)
        return bool(torch.equal(f(torch.ones(3)), torch.full((3,), 3.0)))
    except Exception:  # no C++ compiler, or a torch built without inductor
        return False


@pytest.mark.slow  # the compiler takes minutes on a shared 2-core machine (seconds on a quiet one)
def test_compile_gives_the_same_events_and_checkpoints(tmp_path):
    if not _compiler_works():
        pytest.skip("torch.compile does not work on this machine (no C++ compiler for inductor)")
    plain, plain_events = _run("float32", max_steps=6, checkpoint_every=3)
    compiled, compiled_events = _run("float32", max_steps=6, checkpoint_every=3, compile=True)
    assert [(e.kind, getattr(e, "step", None)) for e in compiled_events] == \
        [(e.kind, getattr(e, "step", None)) for e in plain_events]
    a = [e.loss for e in plain_events if isinstance(e, StepEvent)]
    b = [e.loss for e in compiled_events if isinstance(e, StepEvent)]
    np.testing.assert_allclose(b, a, rtol=1e-4)  # no dropout: the same arithmetic, fused
    path = compiled.save_checkpoint(tmp_path / "compiled.pt")
    from gpt_core.checkpoint import load_model
    model, _ = load_model(path)
    assert model.state_dict().keys() == plain.model.state_dict().keys()  # no "_orig_mod." prefix
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, compiled.model.state_dict()[name])


# --- the command line -------------------------------------------------------------------------------
def test_cli_precision_says_which_and_why_and_shows_utilisation(capsys, tmp_path):
    from gpt_core.__main__ import main
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    tiny = ["train", "--text", str(text), "--tokenizer", "char", "--context-length", "16", "--emb-dim", "32",
            "--n-layers", "2", "--n-heads", "4", "--batch-size", "4", "--epochs", "1", "--threads", "1",
            "--eval-freq", "50", "--sample-tokens", "0"]
    assert main([*tiny, "--precision", "bfloat16"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("training ") and "precision bfloat16 (bfloat16 was asked for;" in first
    assert "utilisation: " in out and "of this machine's bfloat16 peak" in out
    assert main([*tiny, "--precision", "fp8"]) == 2
    assert "--precision: precision must be one of float32, bfloat16, auto, tf32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert "--precision" in help_text and "--compile" in help_text
