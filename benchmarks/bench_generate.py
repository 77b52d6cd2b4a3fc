"""Generation speed on the GPT-2 124M shape: ours (KV cache) vs transformers' GPT2LMHeadModel
(same weights, its own KV cache) vs the book's `llms_from_scratch.ch05.generate`.

Random weights (seed 123), loaded as the app loads GPT-2: saved as a transformers
`model.safetensors` and read back through `load_gpt2` (the memory-mapped cache and its
input-major layout). Greedy decoding of N new tokens from a short prompt. Before any
timing counts, the three greedy outputs must be identical token for token, and a seeded
top-k sampled run of ours must equal the book's for >= 100 tokens. Runs are interleaved
(ours, transformers, ours sampled, ..., book) so a busy shared CPU slows all of them alike;
the table gives median tokens/s and the ratios.

    python benchmarks/bench_generate.py                 # 200 tokens, 3 rounds, book once
    python benchmarks/bench_generate.py --tokens 100 --rounds 5 --book-rounds 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gpt_core.config import GPT2_SIZES  # noqa: E402
from gpt_core.generate import generate  # noqa: E402
from gpt_core.gpt2 import load_gpt2  # noqa: E402
from gpt_core.model import GPTModel  # noqa: E402
from gpt_core.tokenizers import GPT2Tokenizer  # noqa: E402

PROMPT = "Hello, I am a language model,"


def to_transformers(model: GPTModel):
    """A transformers GPT2LMHeadModel holding exactly our weights.

    Its Conv1D layers store weights as [in, out] (our Linear's transpose), and its attention
    projects query, key and value with one matrix: c_attn = [W_query; W_key; W_value]^T.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = model.cfg
    hf_cfg = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.context_length, n_embd=cfg.emb_dim,
                        n_layer=cfg.n_layers, n_head=cfg.n_heads, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, layer_norm_epsilon=1e-5, activation_function="gelu_new",
                        tie_word_embeddings=True)
    hf = GPT2LMHeadModel(hf_cfg).eval()
    sd = model.state_dict()
    new = {"transformer.wte.weight": sd["tok_emb.weight"], "transformer.wpe.weight": sd["pos_emb.weight"],
           "transformer.ln_f.weight": sd["final_norm.scale"], "transformer.ln_f.bias": sd["final_norm.shift"]}
    for i in range(cfg.n_layers):
        ours, theirs = f"trf_blocks.{i}.", f"transformer.h.{i}."
        qkv = [sd[f"{ours}att.W_{n}.weight"] for n in ("query", "key", "value")]
        new[theirs + "attn.c_attn.weight"] = torch.cat(qkv, dim=0).T
        if cfg.qkv_bias:
            new[theirs + "attn.c_attn.bias"] = torch.cat([sd[f"{ours}att.W_{n}.bias"] for n in ("query", "key", "value")])
        else:
            new[theirs + "attn.c_attn.bias"] = torch.zeros(3 * cfg.emb_dim)
        new[theirs + "attn.c_proj.weight"] = sd[ours + "att.out_proj.weight"].T
        new[theirs + "attn.c_proj.bias"] = sd[ours + "att.out_proj.bias"]
        new[theirs + "mlp.c_fc.weight"] = sd[ours + "ff.layers.0.weight"].T
        new[theirs + "mlp.c_fc.bias"] = sd[ours + "ff.layers.0.bias"]
        new[theirs + "mlp.c_proj.weight"] = sd[ours + "ff.layers.2.weight"].T
        new[theirs + "mlp.c_proj.bias"] = sd[ours + "ff.layers.2.bias"]
        for n, (a, b) in {"ln_1": ("norm1", ""), "ln_2": ("norm2", "")}.items():
            new[f"{theirs}{n}.weight"] = sd[f"{ours}{a}.scale"]
            new[f"{theirs}{n}.bias"] = sd[f"{ours}{a}.shift"]
    hf_sd = hf.state_dict()
    missing = [k for k in hf_sd if k not in new and k != "lm_head.weight" and not k.endswith(".attn.bias")
               and not k.endswith(".attn.masked_bias")]
    if missing:
        raise RuntimeError(f"unmapped transformers weights: {missing[:5]}")
    with torch.no_grad():
        for k, v in new.items():
            hf_sd[k].copy_(v.contiguous())
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    return hf


def load_as_the_app_does(model: GPTModel, folder: str):
    """`model` written as transformers' GPT-2 (`save_pretrained`) and loaded back through
    `load_gpt2`; returns (our loaded model, the transformers model)."""
    hf = to_transformers(model)
    hf.save_pretrained(folder, safe_serialization=True)
    loaded, _, _ = load_gpt2(folder, cache_dir=folder)
    loaded_state = loaded.state_dict()
    for name, tensor in model.state_dict().items():
        if not torch.equal(loaded_state[name], tensor):
            raise RuntimeError(f"{name} changed on the way through load_gpt2")
    return loaded, hf


def timed(fn) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--book-rounds", type=int, default=1, help="rounds that include the book (slow)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); on a busy shared CPU 1 can beat 2")
    parser.add_argument("--sampled-check-tokens", type=int, default=100,
                        help="tokens of the seeded sampled comparison with the book (0 skips it)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from llms_from_scratch.ch04 import GPTModel as BookGPTModel
    from llms_from_scratch.ch05 import generate as book_generate

    cfg = GPT2_SIZES["124M"]
    torch.manual_seed(123)
    initial = GPTModel(cfg).eval()
    book = BookGPTModel(cfg.to_dict()).eval()
    book.load_state_dict(initial.state_dict(), strict=True)
    folder = tempfile.TemporaryDirectory(prefix="bench-generate-")
    ours, hf = load_as_the_app_does(initial, folder.name)
    del initial
    idx = torch.tensor([GPT2Tokenizer().encode(PROMPT)])
    n = args.tokens
    print(f"GPT-2 124M shape, random weights, prompt {idx.shape[1]} tokens, {n} new tokens, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")

    # --- equality before timing -----------------------------------------------------------
    if args.sampled_check_tokens:
        k = args.sampled_check_tokens
        torch.manual_seed(7)
        expected = book_generate(book, idx, k, cfg.context_length, temperature=1.0, top_k=50)
        torch.manual_seed(7)
        got = generate(ours, idx, k, temperature=1.0, top_k=50)
        assert torch.equal(got, expected), "sampled tokens differ from the book's"
        print(f"check: {k} sampled tokens (seed 7, temperature 1, top-k 50) identical to the book's generate")

    runs = {
        "ours greedy (KV cache)": lambda: generate(ours, idx, n),
        "transformers greedy": lambda: hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=n,
                                                   min_new_tokens=n, do_sample=False),
        "ours top-k 50": lambda: generate(ours, idx, n, temperature=1.0, top_k=50, seed=1),
        "ours top-p 0.95": lambda: generate(ours, idx, n, temperature=1.0, top_p=0.95, seed=1),
        "ours top-k 50 + top-p 0.95": lambda: generate(ours, idx, n, temperature=1.0, top_k=50, top_p=0.95, seed=1),
        "book generate greedy": lambda: book_generate(book, idx, n, cfg.context_length),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    greedy_outputs = {}
    with torch.inference_mode():
        hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=2, do_sample=False)  # warm-up
    generate(ours, idx, 2)
    for r in range(args.rounds):
        for name, fn in runs.items():
            if name.startswith("book") and r >= args.book_rounds:
                continue
            seconds, out = timed(fn)
            times[name].append(seconds)
            print(f"  round {r + 1}: {name:<28} {seconds:7.2f}s  {n / seconds:6.1f} tokens/s", flush=True)
            if "greedy" in name:
                greedy_outputs.setdefault(name, out)
                assert out.shape == (1, idx.shape[1] + n), (name, out.shape)
    reference = greedy_outputs["ours greedy (KV cache)"]
    for name, out in greedy_outputs.items():
        assert torch.equal(out, reference), f"{name} greedy tokens differ from ours"
    print(f"check: greedy {n} tokens identical: {' == '.join(k.split()[0] for k in greedy_outputs)}")

    speed = {name: n / statistics.median(t) for name, t in times.items() if t}
    ours_speed = speed["ours greedy (KV cache)"]
    print()
    print(f"| {'run':<28} | tokens/s | ours greedy is |")
    print(f"|{'-' * 30}|---------:|---------------:|")
    for name, s in speed.items():
        print(f"| {name:<28} | {s:8.1f} | {ours_speed / s:13.2f}x |")
    # Sampling overhead from paired rounds (each sampled run against the greedy run of its round).
    print()
    for name in ("ours top-k 50", "ours top-p 0.95", "ours top-k 50 + top-p 0.95"):
        ratios = [s / g for s, g in zip(times[name], times["ours greedy (KV cache)"])]
        print(f"sampling overhead {name[5:]:<22}: {100 * (statistics.median(ratios) - 1):+.1f}% over greedy")
    print(f"ours vs transformers: {ours_speed / speed['transformers greedy']:.2f}x (target >= 1.2x)")
    if "book generate greedy" in speed:
        print(f"ours vs book: {ours_speed / speed['book generate greedy']:.2f}x (target >= 5x)")


if __name__ == "__main__":
    main()
