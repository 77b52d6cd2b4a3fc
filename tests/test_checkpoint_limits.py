"""Checkpoints are checked before anything is built for them: small files that claim huge
models, decompression bombs, files that are not torch.save's zip, and pickles that run code
are each refused with a sentence, cost little memory (peak RSS measured in a child process),
and name only the file. Good files load as before, their tensors memory-mapped."""
from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from gpt_core.checkpoint import CheckpointError, CheckpointLimits, load_model, read_checkpoint, save_checkpoint
from gpt_core.config import GPTConfig
from gpt_core.model import GPTModel
from gpt_core.tokenizers import CharTokenizer
from payloads import write_code_running_checkpoint

ROOT = Path(__file__).resolve().parent.parent
MB = 1 << 20
# What a session that trains up to 20M parameters accepts (playground/session.py builds it so).
LIMITS = CheckpointLimits.for_models_up_to(20_000_000, max_context_length=4096)
# A refused file may cost the reader this much at most (the crafted ones cost 4.5-12.7 GB before).
MAX_PEAK_MB = 300
needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures memory through /proc")

TINY = GPTConfig(vocab_size=64, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)


def _claiming(path: Path, **claims) -> Path:
    """A tiny model's state dict whose stored config claims another size."""
    torch.manual_seed(0)
    save_checkpoint(path, model=GPTModel(TINY), model_config=TINY.replace(**claims))
    return path


def _deflated(source: Path, path: Path) -> Path:
    """`source` (a torch.save zip) rewritten with every member deflate-compressed."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for member in src.infolist():
            with src.open(member) as r, dst.open(member.filename, "w", force_zip64=True) as w:
                while chunk := r.read(8 * MB):
                    w.write(chunk)
    return path


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> dict[str, tuple[Path, CheckpointLimits | None]]:
    """Each hostile file, with the limits it is read under (None: none at all)."""
    d = tmp_path_factory.mktemp("crafted")
    files: dict[str, tuple[Path, CheckpointLimits | None]] = {}
    files["context 45,000"] = (_claiming(d / "ctx45k.pt", context_length=45_000), LIMITS)
    # Without limits the shapes alone refuse it, checked on the meta device before any build.
    files["context 45,000, no limits"] = (_claiming(d / "ctx45k_nolimits.pt", context_length=45_000), None)
    files["context 20,000 x 12 layers"] = (_claiming(d / "ctx20k.pt", context_length=20_000, n_layers=12), LIMITS)
    files["12 layers claimed, 2 stored, no limits"] = (
        _claiming(d / "layers12.pt", context_length=20_000, n_layers=12), None)
    # 200 real (tiny) blocks at context 4,096: few parameters, but 3.4 GB of causal masks.
    masks = GPTConfig(vocab_size=64, context_length=4096, emb_dim=8, n_heads=1, n_layers=200, drop_rate=0.0)
    with torch.device("meta"):
        shapes = GPTModel(masks).state_dict()
    torch.save({k: torch.zeros(v.shape, dtype=v.dtype) for k, v in shapes.items() if not k.endswith(".mask")}
               | {k: torch.zeros(1, dtype=torch.bool).expand(v.shape) for k, v in shapes.items()
                  if k.endswith(".mask")}, d / "masks.pth")
    files["200 layers of 4,096-token masks"] = (d / "masks.pth", LIMITS)
    # 64 MB of zeros deflated to ~64 KB, read under an 8 MB limit.
    torch.save({"tok_emb.weight": torch.zeros(4096, 4096)}, d / "zeros.pth")
    files["deflate bomb"] = (_deflated(d / "zeros.pth", d / "bomb.pth"), CheckpointLimits(max_tensor_bytes=8 * MB))
    files["deflate ratio"] = (d / "bomb.pth", LIMITS)  # within LIMITS' total, but 1000:1
    files["control: the bomb with no limits"] = (d / "bomb.pth", None)  # inflated, then refused
    (d / "zeros.pth").unlink()
    (d / "notes.pt").write_text("not a checkpoint, just text\n" * 100)
    files["not a zip"] = (d / "notes.pt", LIMITS)
    whole = save_checkpoint(d / "whole.pt", model=GPTModel(TINY)).read_bytes()
    (d / "cut.pt").write_bytes(whole[: len(whole) // 2])
    files["truncated"] = (d / "cut.pt", LIMITS)
    marker = d / "code-ran"
    files["pickle that runs code"] = (write_code_running_checkpoint(d / "evil.pth", marker, "torch-zip"), LIMITS)
    files["legacy pickle that runs code"] = (
        write_code_running_checkpoint(d / "evil_legacy.pth", marker, "legacy-pickle"), LIMITS)
    files["plain pickle that runs code"] = (
        write_code_running_checkpoint(d / "evil_plain.pth", marker, "plain-pickle"), LIMITS)
    return files


_CHILD = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import torch
    from gpt_core.checkpoint import CheckpointError, CheckpointLimits, load_model
    path, limits = sys.argv[2], json.loads(sys.argv[3])
    limits = CheckpointLimits(**limits) if limits is not None else None
    def status_kb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    try:  # reset the peak, so the import's own transient peak does not hide the load's
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before = status_kb("VmRSS")
    try:
        load_model(path, limits=limits)
        message = None
    except CheckpointError as e:
        message = str(e)
    after = status_kb("VmHWM")
    print(json.dumps({"message": message, "peak_mb": (after - before) / 1024}))
""")


def _limits_json(limits: CheckpointLimits | None) -> str:
    return json.dumps(None if limits is None else dataclasses.asdict(limits))


@pytest.fixture(scope="module")
def outcomes(crafted) -> dict[str, dict]:
    """Each crafted file loaded in its own fresh process (two at a time): its message and how
    far its peak RSS rose above the interpreter with torch imported."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results, pending = {}, list(crafted.items())
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = {name: subprocess.Popen([sys.executable, "-c", _CHILD, str(ROOT), str(path), _limits_json(limits)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for name, (path, limits) in batch}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"{name}: {err[-2000:]}"
            results[name] = json.loads(out.strip().splitlines()[-1])
    return results


EXPECTED = {
    "context 45,000": "context of 45,000 tokens; the limit here is 4,096",
    "context 45,000, no limits": "'pos_emb.weight' has shape (16, 32) in the checkpoint but (45000, 32)",
    "context 20,000 x 12 layers": "context of 20,000 tokens",
    "12 layers claimed, 2 stored, no limits": "no tensors of trf_blocks.2",
    "200 layers of 4,096-token masks": "would take 3.1 GB of memory",
    "deflate bomb": "expands to 64.0 MB when read, more than the 8.0 MB allowed",
    "deflate ratio": "compressed",
    "not a zip": "not a PyTorch checkpoint",
    "truncated": "truncated",
    "pickle that runs code": "pickled Python objects",
    "legacy pickle that runs code": "not the zip archive torch.save writes",
    "plain pickle that runs code": "not the zip archive torch.save writes",
}


@needs_proc
@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_crafted_file_is_refused_with_a_sentence_and_little_memory(name, crafted, outcomes):
    path, _ = crafted[name]
    outcome = outcomes[name]
    message = outcome["message"]
    assert message is not None, f"{name} loaded"
    assert EXPECTED[name] in message, message
    assert path.name in message or "the checkpoint" in message
    assert str(path.parent) not in message and "/" not in message, message  # the file, never its folder
    print(f"{name}: peak RSS +{outcome['peak_mb']:.1f} MB")
    assert outcome["peak_mb"] < MAX_PEAK_MB, f"{name}: peak RSS rose {outcome['peak_mb']:.0f} MB"
    assert not (path.parent / "code-ran").exists()


@needs_proc
def test_the_measurement_sees_what_a_load_costs(outcomes):
    """The control: read with no limit, the bomb is inflated (64 MB) before its shapes are
    refused, and the child's peak shows it; the limit refuses it before that."""
    control = outcomes["control: the bomb with no limits"]
    assert "not a GPT model's" in control["message"]
    assert control["peak_mb"] > 60, control


def _mapped(path: Path) -> bool:
    return str(path) in Path("/proc/self/maps").read_text()


@needs_proc
def test_a_good_checkpoint_loads_under_limits_memory_mapped(tmp_path):
    torch.manual_seed(1)
    model = GPTModel(TINY)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    optimizer.step()
    tok = CharTokenizer.from_text("".join(chr(32 + i) for i in range(TINY.vocab_size)))
    path = save_checkpoint(tmp_path / "good.pt", model=model, optimizer=optimizer, tokenizer=tok)

    ckpt = read_checkpoint(path, limits=LIMITS)
    assert _mapped(path)  # the weights are read from the file as they are used, not copied
    loaded, same = load_model(ckpt, limits=LIMITS)
    assert same is ckpt
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0)
    fresh = torch.optim.AdamW(loaded.parameters())
    fresh.load_state_dict(ckpt.optimizer_state_dict)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    del ckpt, same
    gc.collect()
    # What outlives the load (the model's weights, the optimizer's adopted state) owns its memory.
    assert not _mapped(path)


def test_the_books_bare_state_dict_and_a_deflated_copy_load_under_limits(tmp_path):
    torch.manual_seed(2)
    book = GPTModel(TINY)
    torch.save(book.state_dict(), tmp_path / "model.pth")
    for path in (tmp_path / "model.pth", _deflated(tmp_path / "model.pth", tmp_path / "zipped.pth")):
        model, ckpt = load_model(path, n_heads=4, limits=LIMITS)
        assert ckpt.kind == "state_dict" and ckpt.config_inferred and model.cfg.n_layers == 2
        for name, tensor in book.state_dict().items():
            assert torch.equal(model.state_dict()[name], tensor), name


def test_a_refused_upload_leaves_the_sessions_model_in_place(tmp_path):
    from playground.session import Workspace

    ws = Workspace(files_root=tmp_path / "sessions")
    try:
        ws.set_text("A small text of our own, so no sample corpus is read. " * 4, name="ours")
        tok = CharTokenizer.from_text(ws.text)
        cfg = TINY.replace(vocab_size=tok.n_vocab)
        save_checkpoint(tmp_path / "mine.pt", model=GPTModel(cfg), model_config=cfg, tokenizer=tok)
        own, _ = ws.load_checkpoint(str(tmp_path / "mine.pt"))
        before = {k: v.clone() for k, v in own.model.state_dict().items()}

        save_checkpoint(tmp_path / "huge.pt", model=GPTModel(cfg), model_config=cfg.replace(context_length=45_000),
                        tokenizer=tok)
        with pytest.raises(CheckpointError, match="context of 45,000 tokens") as refused:
            ws.load_checkpoint(str(tmp_path / "huge.pt"))
        assert str(tmp_path) not in str(refused.value) and "huge.pt" in str(refused.value)
        assert ws.own is own and all(torch.equal(v, before[k]) for k, v in own.model.state_dict().items())
    finally:
        ws.close()


def test_a_config_claiming_thousands_of_tiny_layers_is_refused_before_any_is_built():
    from gpt_core.checkpoint_limits import CheckpointLimits, check_claims
    from gpt_core.config import GPTConfig

    config = GPTConfig(vocab_size=10, context_length=8, emb_dim=8, n_heads=1, n_layers=20_000)
    with pytest.raises(CheckpointError, match="20,000 transformer blocks"):
        check_claims(config, {}, limits=CheckpointLimits.for_models_up_to(10**9, max_layers=96))
