"""Students past the server's memory budget: nothing lost, resident memory within the budget.

Launches `python app.py` with PLAYGROUND_MEMORY_BUDGET_MB and PLAYGROUND_MAX_TRAIN_PARAMETERS
set, then opens sessions one after another (each its own gradio_client session with a
heartbeat, as a browser tab) that each train the largest model the server allows (character
tokens, 768 wide, as many layers as fit) for a few iterations and save a checkpoint, until
their models together are well past the budget. Then every student comes back and saves
again: a session whose model was spilled to disk is read back, and its weights and AdamW
state must equal, bit for bit, what it saved before it was spilled. `problems` says what
went wrong. Test support, run by tests/test_memory_budget.py (a small budget) and by
benchmarks/load_budget.py.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from app_server import AppServer, MemorySampler
from students import Api, connect

PER_BLOCK = 12 * 768 * 768 + 13 * 768  # one transformer block of width 768, as GPTConfig counts it


@dataclass
class Student:
    name: str
    outcome: str = ""
    rss_after_mb: float = float("nan")
    peak_training_mb: float = float("nan")  # the server's peak while this student trained and saved
    peak_back_mb: float = float("nan")  # ... and while they came back and saved again
    checkpoint: Path | None = None
    digests: dict[str, str] = field(default_factory=dict)
    spilled: bool = False
    came_back: str = ""
    bit_exact: bool | None = None


def largest_model(max_params: int, vocab: int = 100, context: int = 256) -> dict:
    """The custom model with the most layers of width 768 under `max_params` parameters."""
    fixed = 2 * vocab * 768 + context * 768 + 2 * 768
    layers = max(1, (max_params - fixed) // PER_BLOCK)
    return {"context_length": context, "emb_dim": 768, "n_heads": 12, "n_layers": int(layers),
            "drop_rate": 0.0}


def digests(path: Path) -> dict[str, str]:
    """sha256 of every tensor of a checkpoint's model and optimizer state, by name."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    out = {}
    for prefix, tree in (("model", ckpt["model_state_dict"]), ("optimizer", ckpt.get("optimizer_state_dict", {}))):
        stack = [(prefix, tree)]
        while stack:
            name, value = stack.pop()
            if isinstance(value, torch.Tensor):
                out[name] = hashlib.sha256(value.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()
            elif isinstance(value, dict):
                stack += [(f"{name}.{k}", v) for k, v in value.items()]
            elif isinstance(value, (list, tuple)):
                stack += [(f"{name}.{i}", v) for i, v in enumerate(value)]
            else:
                out[name] = repr(value)
    return out


def checkpoints(files_dir: Path) -> set[Path]:
    return {p for p in files_dir.glob("*/*.pt")}


def save(client, files_dir: Path, folders_before: set[Path]) -> Path | None:
    """Save the session's checkpoint; its file is the newest in a session folder that was
    not there before the session trained."""
    since = time.time()
    client.predict(api_name="/save_checkpoint")
    new = [p for p in checkpoints(files_dir) if p.parent not in folders_before and p.stat().st_mtime >= since - 1]
    return max(new, key=lambda p: p.stat().st_mtime) if new else None


def session_folders(files_dir: Path) -> set[Path]:
    return {p for p in files_dir.glob("*") if p.is_dir()}


def run(*, budget_mb: int, max_params: int, students: int, workdir: Path, iterations: int = 2,
        heartbeat: str = "5") -> tuple[list[Student], dict]:
    env = {"PLAYGROUND_MEMORY_BUDGET_MB": str(budget_mb), "PLAYGROUND_MAX_TRAIN_PARAMETERS": str(max_params),
           "PLAYGROUND_TRAIN_CONCURRENCY": "1", "GRADIO_HEARTBEAT_INTERVAL": heartbeat}
    model = largest_model(max_params)
    from playground.options import PRESET_LABELS

    options = {"Tokenizer": "Characters", "Preset": PRESET_LABELS["custom"], **model, "Batch size": 2,
               "Iterations over random windows": iterations, "Evaluate every": iterations,
               "Evaluation batches": 1, "Start context": "I had"}
    report = {"budget_mb": budget_mb, "model": model, "errors": []}
    people: list[Student] = []
    with AppServer(workdir / "app", env=env) as server:
        sampler = MemorySampler(server.pid)
        sampler.start()
        report["baseline_mb"] = server.rss_mb()
        clients = []
        try:
            for i in range(students):
                s = Student(f"student {i + 1}")
                people.append(s)
                client = connect(server.url)
                clients.append(client)
                api = Api.of(client)
                others = session_folders(server.files_dir)
                started = time.monotonic()
                try:
                    out = client.predict(*api.args_by_label("/train", options), api_name="/train")
                    s.outcome = str(out[0]).split("\n")[0][:90]
                    s.checkpoint = save(client, server.files_dir, others)
                    if s.checkpoint is not None:
                        s.digests = digests(s.checkpoint)
                except Exception as exc:  # a refusal is an outcome to print, not a crash
                    s.outcome = f"refused: {str(exc)[:120]}"
                s.rss_after_mb, s.peak_training_mb = server.rss_mb(), sampler.peak(since=started)
                print(f"{s.name}: {s.outcome} | server RSS {s.rss_after_mb:,.0f} MB, "
                      f"peak {s.peak_training_mb:,.0f} MB", flush=True)
            for s in people:  # which models are on disk now, before anyone comes back
                s.spilled = bool(s.checkpoint and (s.checkpoint.parent / "spilled" / "model.pt").exists())
            for s, client in zip(people, clients):
                if not s.digests:
                    continue
                started = time.monotonic()
                try:
                    again = save(client, server.files_dir, session_folders(server.files_dir) - {s.checkpoint.parent})
                    s.came_back = "model back" if again is not None else "no checkpoint"
                    s.bit_exact = again is not None and digests(again) == s.digests
                except Exception as exc:
                    s.came_back, s.bit_exact = f"error: {str(exc)[:100]}", False
                    report["errors"].append(f"{s.name}: {exc}")
                s.peak_back_mb = sampler.peak(since=started)
        finally:
            for client in clients:
                client.close()
            sampler.stop()
        report["peak_mb"] = sampler.peak()
        report["final_mb"] = server.rss_mb()
        report["log"] = server.log()
    return people, report


def table(people: list[Student], report: dict) -> str:
    m = report["model"]
    lines = [f"Budget {report['budget_mb']:,} MB · server baseline {report['baseline_mb']:,.0f} MB · model "
             f"{m['n_layers']} layers × 768, context {m['context_length']} · peak RSS {report['peak_mb']:,.0f} MB "
             f"({'within' if report['peak_mb'] <= report['budget_mb'] else 'OVER'} the budget)",
             "",
             "| student | outcome | server RSS after | peak while training | spilled when all had trained | "
             "came back | peak while coming back | bit-exact |",
             "|---|---|---:|---:|---|---|---:|---|"]
    for s in people:
        exact = "-" if s.bit_exact is None else ("yes" if s.bit_exact else "NO")
        lines.append(f"| {s.name} | {s.outcome} | {s.rss_after_mb:,.0f} MB | {s.peak_training_mb:,.0f} MB | "
                     f"{'yes' if s.spilled else 'no'} | {s.came_back or '-'} | {s.peak_back_mb:,.0f} MB | {exact} |")
    return "\n".join(lines)


def problems(people: list[Student], report: dict) -> list[str]:
    bad = list(report["errors"])
    if report["peak_mb"] > report["budget_mb"]:
        bad.append(f"peak RSS {report['peak_mb']:.0f} MB is over the budget of {report['budget_mb']} MB")
    for s in people:
        if s.digests and not s.bit_exact:
            bad.append(f"{s.name}: the model that came back is not the one saved ({s.came_back})")
        if not s.digests and not s.outcome.startswith("refused"):
            bad.append(f"{s.name}: trained but saved nothing ({s.outcome})")
    if not any(s.spilled for s in people):
        bad.append("no session was spilled: the load did not go past the budget")
    return bad
