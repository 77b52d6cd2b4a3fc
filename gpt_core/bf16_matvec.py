"""One row times a bfloat16 matrix at the speed of its bytes: generation's products in Fast mode.

PyTorch's one-row bfloat16 products (`torch.mv`, oneDNN's) widen every element to float32
before multiplying and run no faster than float32, so a bfloat16 generation read half the bytes
for no gain. `kernels/bf16_matvec.c` multiplies with AVX512_BF16's dot-product instruction
instead; on this project's CPUs it is 1.8x float32's one-row product on the output head and
3-8x on a block's matrices (`benchmarks/bench_precision.py` measures generation whole).

The C file is compiled once per machine with the system's C compiler into a cache folder
($GPT_CORE_KERNELS_DIR, else kernels/ in the user cache, gpt_core/user_cache.py), named by a
hash of its source and flags, and loaded with ctypes (which lets go of the GIL while it
runs, so other sessions' work goes on). It is used only where it can be: a CPU with
AVX512_BF16, a C compiler that builds it, tensors in the layout it reads. Everywhere else `matvec` answers None and the
caller keeps torch's product; `GPT_CORE_NATIVE=0` turns it off, and `status()` says which and
why in a sentence.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from .precision import read_cpu_flags
from .user_cache import user_cache_root

SOURCE = Path(__file__).with_name("kernels") / "bf16_matvec.c"
FLAGS = ("-O3", "-mavx512f", "-mavx512bw", "-mavx512bf16", "-fopenmp", "-shared", "-fPIC")
# Below this many weights a second thread costs more to wake than it saves.
PARALLEL_FROM = 1 << 16

_lock = threading.Lock()
_loaded: tuple[ctypes._CFuncPtr | None, str] | None = None  # (the function or None, why)


def kernels_dir() -> Path:
    env = os.environ.get("GPT_CORE_KERNELS_DIR")
    if env:
        return Path(env)
    return user_cache_root() / "kernels"


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def build(compiler: str, directory: Path) -> Path:
    """The compiled kernel in `directory`: the one there for this source and these flags, else
    built now (into a temporary name, then renamed, so a half-written file is never loaded)."""
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join((compiler, *FLAGS)).encode()).hexdigest()[:16]
    target = directory / f"bf16_matvec-{digest}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    try:
        done = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", tmp],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                               f"{compiler} exited with {done.returncode}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _load() -> tuple[ctypes._CFuncPtr | None, str]:
    if os.environ.get("GPT_CORE_NATIVE", "1") == "0":
        return None, "turned off (GPT_CORE_NATIVE=0)"
    if "avx512_bf16" not in read_cpu_flags():
        return None, "this CPU has no AVX512_BF16"
    compiler = _compiler()
    if compiler is None:
        return None, "no C compiler to build it with"
    try:
        library = ctypes.CDLL(str(build(compiler, kernels_dir())))
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        return None, f"it could not be built: {e}"
    function = library.bf16_matvec
    function.restype = None
    function.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64, ctypes.c_int64, ctypes.c_int, ctypes.c_int]
    return function, "AVX512_BF16 kernel"


def _kernel() -> ctypes._CFuncPtr | None:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded[0]


def available() -> bool:
    """Whether the kernel runs here (loaded on first ask): where not, `matvec` answers None."""
    return _kernel() is not None


def status() -> str:
    """What one-row bfloat16 products run on here, in a sentence."""
    _kernel()
    function, why = _loaded
    return f"one-row bfloat16 products: {why}" if function else f"one-row bfloat16 products: torch.mv ({why})"


def reset() -> None:
    """Forget what was loaded (tests: the next call looks again, under the environment then)."""
    global _loaded
    with _lock:
        _loaded = None


def _readable(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype == torch.bfloat16 and t.is_contiguous()


def matvec(weight: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None = None, *,
           out_dtype: torch.dtype = torch.bfloat16) -> torch.Tensor | None:
    """`bias + weight @ x` for a [out, in] bfloat16 `weight` and a bfloat16 row `x` of `in`
    values, summed in float32 and returned in `out_dtype` (bfloat16 or float32); None where the
    kernel cannot run (see the module's docstring), so the caller computes it another way."""
    function = _kernel()
    if function is None or weight.dim() != 2 or x.numel() != weight.shape[1] or out_dtype not in (
            torch.bfloat16, torch.float32):
        return None
    if not (_readable(weight) and _readable(x) and (bias is None or (_readable(bias) and bias.numel() == weight.shape[0]))):
        return None
    if weight.requires_grad or x.requires_grad:
        return None  # no gradient flows through it; generation runs without
    out = torch.empty(weight.shape[0], dtype=out_dtype)
    threads = torch.get_num_threads() if weight.numel() >= PARALLEL_FROM else 1
    function(weight.data_ptr(), x.data_ptr(), None if bias is None else bias.data_ptr(), out.data_ptr(),
             weight.shape[0], weight.shape[1], int(out_dtype == torch.bfloat16), threads)
    return out
