"""GPT-2 loading: the book's loader against ours (first load: TF -> cache; cached load).

Writes a full-size checkpoint in OpenAI's release layout with random weights (124M: the data
file is exactly 497,759,232 bytes, like the real one) into a temp folder, reused across runs,
then runs each loader in its own child process, interleaved, several repetitions:

  book        llms_from_scratch.ch05.load_gpt2_params_from_tf_ckpt + load_weights_into_gpt
              into the book's GPTModel (TensorFlow in-process, as the book does)
  ours-first  gpt_core.gpt2.load_gpt2(folder) with no cache: checks, TF in a child process
              writes the safetensors cache, the model maps it
  ours-cached gpt_core.gpt2.load_gpt2(folder) again

Time is measured inside the child from just before the loader to a loaded model (torch and
the loaders' modules already imported; TensorFlow's import counts, it is part of reading a
checkpoint), and "+fwd" adds a first forward pass (mapped pages are read then). Peak memory
is the whole process tree's RSS (the loader and any child it starts), sampled every 10 ms
from /proc, plus each process's own ru_maxrss. The checkpoint is in the page cache for every
loader (hot disk cache, the usual case right after a download).

    python benchmarks/bench_gpt2_load.py [--reps 2] [--size 124M] [--dir DIR] [--clean]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from gpt_core.config import GPT2_SIZES  # noqa: E402

DATA = "model.ckpt.data-00000-of-00001"
CACHE = "gpt_core_weights.safetensors"
RELEASE_DATA_BYTES = {"124M": 497_759_232}

WRITE = """
import sys
sys.path.insert(0, sys.argv[3])
from gpt2_fixtures import write_tf_checkpoint
hp = {"n_vocab": 50257, "n_ctx": 1024, "n_embd": %d, "n_head": %d, "n_layer": %d}
write_tf_checkpoint(sys.argv[1], hp, seed=int(sys.argv[2]))
"""

PRELUDE = """
import json, resource, sys, time
sys.path.insert(0, %r)
import torch
torch.set_num_threads(2)
ids = torch.tensor([[464, 3290, 318, 257, 1332, 286, 262, 1080, 13, 632, 373, 257, 922, 1110, 11, 290]])
folder = sys.argv[1]
"""

BOOK = PRELUDE + """
from llms_from_scratch.ch04 import GPTModel
from llms_from_scratch.ch05 import load_gpt2_params_from_tf_ckpt, load_weights_into_gpt
t0 = time.perf_counter()
settings = json.load(open(folder + "/hparams.json"))
params = load_gpt2_params_from_tf_ckpt(folder + "/model.ckpt", settings)
cfg = {"vocab_size": 50257, "context_length": 1024, "emb_dim": settings["n_embd"], "n_heads": settings["n_head"],
       "n_layers": settings["n_layer"], "drop_rate": 0.1, "qkv_bias": True}
model = GPTModel(cfg)
load_weights_into_gpt(model, params)
model.eval()
"""

OURS = PRELUDE + """
from gpt_core.gpt2 import load_gpt2
t0 = time.perf_counter()
model, cfg, tok = load_gpt2(folder)
"""

EPILOGUE = """
t1 = time.perf_counter()
with torch.no_grad():
    logits = model(ids)
t2 = time.perf_counter()
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("RESULT " + json.dumps({"load": t1 - t0, "fwd": t2 - t0, "self_kb": self_kb, "child_kb": child_kb,
                              "checksum": float(logits[0, -1, :50].sum())}))
"""


def tree_rss_kb(pid: int) -> int:
    """RSS of `pid` and all its descendants, in KB (from /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run(code: str, folder: Path) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code + EPILOGUE, str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
            time.sleep(0.01)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    done.set()
    t.join()
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"loader failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(lines[-1][7:])
    result["tree_kb"] = peak[0]
    return result


def ensure_checkpoint(folder: Path, size: str) -> None:
    cfg = GPT2_SIZES[size]
    expected = RELEASE_DATA_BYTES.get(size, 4 * cfg.num_parameters())
    data = folder / DATA
    if data.exists() and data.stat().st_size == expected and (folder / "model.ckpt.index").exists():
        print(f"reusing checkpoint in {folder}")
        return
    shutil.rmtree(folder, ignore_errors=True)
    print(f"writing a random {size} checkpoint in the release layout to {folder} ...", flush=True)
    t0 = time.perf_counter()
    code = WRITE % (cfg.emb_dim, cfg.n_heads, cfg.n_layers)
    subprocess.run([sys.executable, "-c", code, str(folder), "0", str(ROOT / "tests")], check=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    have = data.stat().st_size
    if have != expected:
        raise SystemExit(f"data file is {have:,} bytes, expected {expected:,}")
    print(f"  done in {time.perf_counter() - t0:.0f} s; {DATA} = {have:,} bytes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--size", default="124M", choices=list(GPT2_SIZES))
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "gpt2-load-bench"))
    ap.add_argument("--clean", action="store_true", help="delete the checkpoint and cache afterwards")
    args = ap.parse_args()
    folder = Path(args.dir) / args.size
    ensure_checkpoint(folder, args.size)
    code = {"book": BOOK % str(ROOT), "ours-first": OURS % str(ROOT), "ours-cached": OURS % str(ROOT)}
    results: dict[str, list[dict]] = {k: [] for k in code}
    for rep in range(args.reps):
        for name in code:  # interleaved: book, ours-first, ours-cached in every repetition
            if name == "ours-first":
                (folder / CACHE).unlink(missing_ok=True)
            r = run(code[name], folder)
            results[name].append(r)
            print(f"rep {rep + 1} {name:12s} load {r['load']:6.2f} s  +fwd {r['fwd']:6.2f} s  "
                  f"tree peak {r['tree_kb'] / 1e6:5.2f} GB", flush=True)
    # Same weights, same numbers up to float32 rounding (SDPA vs the book's explicit softmax).
    sums = [r["checksum"] for rs in results.values() for r in rs]
    agree = max(sums) - min(sums) <= 1e-4 * max(1.0, max(abs(x) for x in sums))
    med = {k: {m: statistics.median(r[m] for r in rs) for m in ("load", "fwd", "tree_kb", "self_kb", "child_kb")}
           for k, rs in results.items()}
    book = med["book"]
    print(f"\nGPT-2 {args.size}, {args.reps} reps (median), {os.cpu_count()} CPUs; logits agree: {agree}")
    print("| loader      | load s | +1st fwd s | vs book (load) | peak RSS tree GB | vs book | own maxrss GB | TF child maxrss GB |")
    print("|-------------|-------:|-----------:|---------------:|-----------------:|--------:|--------------:|-------------------:|")
    for k, m in med.items():
        print(f"| {k:11s} | {m['load']:6.2f} | {m['fwd']:10.2f} | {book['load'] / m['load']:13.1f}x | "
              f"{m['tree_kb'] / 1e6:16.2f} | {m['tree_kb'] / book['tree_kb']:6.2f}x | {m['self_kb'] / 1e6:13.2f} | "
              f"{(m['child_kb'] / 1e6 if k == 'ours-first' else 0):18.2f} |")
    first, cached = med["ours-first"], med["ours-cached"]
    print(f"\ntargets: first load no slower than the book: {first['load'] <= book['load']} "
          f"({book['load'] / first['load']:.2f}x); first-load peak <= 0.75x book: "
          f"{first['tree_kb'] <= 0.75 * book['tree_kb']} ({first['tree_kb'] / book['tree_kb']:.2f}x); "
          f"cached >= 5x faster: {book['load'] >= 5 * cached['load']} ({book['load'] / cached['load']:.0f}x)")
    if args.clean:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"removed {folder}")
    else:
        (folder / CACHE).unlink(missing_ok=True)
        print(f"kept the checkpoint in {folder} for the next run (--clean removes it)")


if __name__ == "__main__":
    main()
