"""A classroom at once: N simulated students drive the launched app through gradio_client.

Each student is its own client (its own Gradio session, heartbeat included, as a browser
tab): uploads a different text, trains the fast demo preset for one short epoch, generates
with their model while the others still train, scores their validation text, and leaves
(closes the client, which fires the app's unload). Meanwhile a thread samples the server's
resident memory. `run_classroom` returns a ClassroomReport; classroom_checks.py says what
it must show. Test support, run by tests/test_classroom.py (5 students) and by
benchmarks/load_classroom.py (20, or as many as asked).
"""
from __future__ import annotations

import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app_server import ROOT, MemorySampler, rss_mb, session_files, settle
from students import Api, Page, connect, markdown_number, plot_traces, queue_place

ASSETS = ROOT / "gpt_core" / "assets"  # the package's data, read here without importing torch

# Training options every student sends (by the labels of the Train tab's fields). One epoch,
# one evaluation (the first step) and no dropout: short, and exactly reproducible.
TRAIN_OPTIONS = {
    "Epochs": 1,
    "Batch size": 8,
    "Evaluate every": 1000,
    "Evaluation batches": 1,
    "drop_rate": 0.0,
    "Seed": 123,
}
PROMPT = "Every effort moves you"
GEN_TOKENS = 30


def train_args(api: Api, **overrides: Any) -> list[Any]:
    return api.args_by_label("/train", {**TRAIN_OPTIONS, **overrides})


# --- the students -----------------------------------------------------------------------------
def student_texts(n: int, *, chars: int = 9_000) -> list[tuple[str, str]]:
    """n different texts (file name, text): slices of Tiny Shakespeare and rotations of The
    Verdict, each headed by its student's name so no two are alike."""
    shakespeare = (ASSETS / "tinyshakespeare.txt").read_text(encoding="utf-8")
    verdict = (ASSETS / "the-verdict.txt").read_text(encoding="utf-8")
    texts = []
    for i in range(n):
        head = f"The notebook of student {i + 1:02d}.\n\n"
        if i % 2 == 0:
            start = (i // 2) * chars * 2 % max(1, len(shakespeare) - chars)
            body = shakespeare[start:start + chars]
        else:
            start = (i // 2) * 1_777 % len(verdict)
            body = (verdict[start:] + "\n\n" + verdict)[:chars]
        texts.append((f"student{i + 1:02d}.txt", head + body))
    return texts


@dataclass
class Classroom:
    """What all students share: how many trainings are still pending (for "generation
    while trainings run") and the clock origin."""
    n: int
    t0: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    trainings_pending: int = 0
    trainings_running: int = 0

    def now(self) -> float:
        return time.monotonic() - self.t0


@dataclass
class StudentResult:
    index: int
    name: str
    text: str
    errors: list[str] = field(default_factory=list)
    summary: str = ""
    preview: str = ""
    submitted: float = math.nan
    started: float = math.nan
    finished: float = math.nan
    ranks: list[tuple[float, int]] = field(default_factory=list)  # (time, trainings ahead) while waiting
    train_status: str = ""
    pressed: threading.Event = field(default_factory=threading.Event)
    run_statuses: list[str] = field(default_factory=list)
    n_updates: int = 0
    steps_done: int | None = None
    step_losses: list[float] = field(default_factory=list)
    eval_train: list[float] = field(default_factory=list)
    eval_val: list[float] = field(default_factory=list)
    checkpoint: str | None = None
    generations: list[tuple[float, float, bool, str]] = field(default_factory=list)  # (t, s, during training, text)
    eval_loss: float | None = None
    left: float = math.nan
    page_seconds: float = math.nan  # opening the page: until its load events finished

    @property
    def queued(self) -> bool:
        return bool(self.ranks)


def run_student(url: str, api: Api, room: Classroom, result: StudentResult, *, upload_dir: Path,
                train_turn: threading.Event, min_generations: int = 3, max_generations: int = 40,
                think_seconds: float = 0.5, page: Page | None = None) -> StudentResult:
    """One student's visit, from opening the page to closing the tab. Errors are recorded,
    never raised, so one student's failure shows in the table instead of hiding the others."""
    from gradio_client import handle_file

    client = None
    try:
        client = connect(url)
        if page is not None:  # the page opens in the student's session, as in a browser
            result.page_seconds, page_errors = page.open(url, client.session_hash)
            result.errors += page_errors
        path = upload_dir / result.name
        path.write_text(result.text, encoding="utf-8")
        summary, _warnings, _tokens, preview = client.predict(handle_file(str(path)), api_name="/upload_text")
        result.summary, result.preview = summary, preview

        train_turn.wait()  # students press Train in a fixed order, a moment apart
        with room.lock:
            room.trainings_pending += 1
        job = client.submit(*train_args(api), api_name="/train")
        try:
            seen = 0
            while not job.done():
                updates = job.outputs()
                if updates and math.isnan(result.submitted):
                    # The first answer comes once the run is in the app's training queue: only now
                    # may the next student press Train, so the queue's order is the students'.
                    result.submitted = room.now()
                    result.pressed.set()
                for update in updates[seen:]:
                    place = queue_place(update[0])
                    if place is not None:
                        if not result.ranks or result.ranks[-1][1] != place:
                            result.ranks.append((room.now(), place))
                    elif math.isnan(result.started):
                        result.started = room.now()
                        with room.lock:
                            room.trainings_running += 1
                seen = len(updates)
                time.sleep(0.05)
            outputs = job.outputs()
            job.result()  # raises if the run failed
        finally:
            with room.lock:
                room.trainings_pending -= 1
                if not math.isnan(result.started):
                    room.trainings_running -= 1
        result.finished = room.now()
        if math.isnan(result.started):
            result.started = result.finished
        if math.isnan(result.submitted):
            result.submitted = result.started
        result.n_updates = len(outputs)
        final = outputs[-1]
        result.train_status = final[0]
        result.run_statuses = [o[0] for o in outputs]
        m = re.search(r"Done: ([\d,]+) steps", final[0])
        result.steps_done = int(m.group(1).replace(",", "")) if m else None
        traces = plot_traces(final[2])
        result.step_losses = traces.get("Batch loss", ([], []))[1]
        result.eval_train = traces.get("Training loss", ([], []))[1]
        result.eval_val = traces.get("Validation loss", ([], []))[1]
        download = final[5]
        result.checkpoint = download.get("value") if isinstance(download, dict) else download

        # Play with the model while the rest of the class trains (at least a few times).
        count = 0
        while count < max_generations:
            with room.lock:
                others_training = room.trainings_pending > 0
            if count >= min_generations and not others_training:
                break
            t = time.perf_counter()
            text = client.predict("Your model", PROMPT, GEN_TOKENS, 1.0, 25, 1.0, 100 + count, True,
                                  api_name="/generate")
            result.generations.append((room.now(), time.perf_counter() - t, others_training, text))
            count += 1
            time.sleep(think_seconds)

        score = client.predict("", "Your model", "", api_name="/evaluate")
        result.eval_loss = markdown_number(score[0], "Loss (cross-entropy)")
    except Exception as exc:  # noqa: BLE001 - recorded for the report
        result.errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
    finally:
        result.pressed.set()  # never hold up the students after this one
        if client is not None:
            client.close()  # the tab closes: the heartbeat ends and the app's unload runs
        result.left = room.now()
    return result


# --- the reference: the same options on the same text, here ---------------------------------
def reference_first_step(text: str) -> dict[str, Any]:
    """First batch loss, first evaluation and number of steps of a demo run on `text` with
    TRAIN_OPTIONS, computed in this process with the app's own option parsing."""
    from playground.options import DEFAULT_PRESET_LABEL, preset_fields

    model, train, tok_kind = preset_fields(DEFAULT_PRESET_LABEL)
    train.update(num_epochs=TRAIN_OPTIONS["Epochs"], batch_size=TRAIN_OPTIONS["Batch size"],
                 eval_freq=TRAIN_OPTIONS["Evaluate every"], eval_iter=TRAIN_OPTIONS["Evaluation batches"],
                 seed=TRAIN_OPTIONS["Seed"])
    model.update(drop_rate=TRAIN_OPTIONS["drop_rate"], qkv_bias=False)
    from threads import torch_threads  # imports torch: only once a reference is asked for

    # One thread: this runs beside a busy server on a shared machine, where a second
    # spinning thread costs more than it gives. The numbers are the same (checked).
    with torch_threads(1):
        return _reference_first_step(text, model, train, tok_kind)


def _reference_first_step(text: str, model: dict[str, Any], train: dict[str, Any], tok_kind: str) -> dict[str, Any]:
    from gpt_core.train_events import EvalEvent, StepEvent
    from playground.session import Workspace
    from playground.options import DEFAULT_PRESET_LABEL, build_spec

    ws = Workspace()
    ws.set_text(text, name="reference")
    spec = build_spec(tokenizer=tok_kind, vocab_size=ws.tokenizer(tok_kind).n_vocab,
                      preset_label=DEFAULT_PRESET_LABEL, **model, **train)
    own = ws.new_run(spec.model, spec.train, tokenizer_kind=tok_kind)
    out: dict[str, Any] = {"total_steps": own.trainer.total_steps}
    events = own.trainer.run()
    for ev in events:
        if isinstance(ev, StepEvent) and "step_loss" not in out:
            out["step_loss"] = ev.loss
        if isinstance(ev, EvalEvent):
            out["train_loss"], out["val_loss"] = ev.train_loss, ev.val_loss
            break
    events.close()
    ws.close()
    return out


# --- a whole class ------------------------------------------------------------------------------
@dataclass
class ClassroomReport:
    students: list[StudentResult]
    baseline_mb: float
    peak_mb: float
    final_mb: float
    idle_start_mb: float
    seconds: float
    session_files_left: int
    references: dict[int, dict[str, Any]] = field(default_factory=dict)
    load_average: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent in each phase
    cache_mb: float = math.nan  # Gradio's file cache on disk after the class (downloads offered)

    def generation_latencies(self, *, during_training: bool | None = True) -> list[float]:
        return [s for r in self.students for _, s, busy, _ in r.generations
                if during_training is None or busy == during_training]

    def row(self) -> dict[str, Any]:
        lat = sorted(self.generation_latencies(during_training=True)) or [math.nan]
        lat_all = sorted(self.generation_latencies(during_training=None)) or [math.nan]
        return {
            "students": len(self.students),
            "queued": sum(r.queued for r in self.students),
            "completed": sum(r.steps_done is not None and not r.errors for r in self.students),
            "errors": sum(bool(r.errors) for r in self.students),
            "gen_n": len(lat_all),
            "gen_p50": percentile(lat, 50), "gen_p95": percentile(lat, 95),
            "gen_all_p95": percentile(lat_all, 95),
            "page_p50": percentile([r.page_seconds for r in self.students], 50),
            "page_p95": percentile([r.page_seconds for r in self.students], 95),
            "baseline_mb": self.baseline_mb, "peak_mb": self.peak_mb, "final_mb": self.final_mb,
            "seconds": self.seconds,
        }


def percentile(values: list[float], q: float) -> float:
    values = sorted(v for v in values if not math.isnan(v))
    if not values:
        return math.nan
    k = (len(values) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def warm_up(url: str, api: Api, upload_dir: Path) -> None:
    """One session that does what every student does, then leaves: loads the tokenizer and
    the lazy imports, so the baseline is the server's memory between sessions."""
    room = Classroom(1)
    go = threading.Event()
    go.set()
    name, text = student_texts(1, chars=3_000)[0]
    res = run_student(url, api, room, StudentResult(0, "warmup.txt", text), upload_dir=upload_dir,
                      train_turn=go, min_generations=1, max_generations=1, think_seconds=0, page=Page(url))
    if res.errors:
        raise RuntimeError(f"warm-up session failed: {res.errors}")


def run_classroom(url: str, server_pid: int, n_students: int, *, workdir: Path, chars: int = 9_000,
                  stagger_seconds: float = 0.3, files_dir: Path | None = None,
                  compute_references: bool = True, settle_seconds: float = 60.0,
                  max_generations: int = 40, think_seconds: float = 0.5,
                  cache_dir: Path | None = None) -> ClassroomReport:
    upload_dir = Path(workdir) / "uploads"
    upload_dir.mkdir(parents=True, exist_ok=True)
    idle_start = rss_mb(server_pid)
    phases: dict[str, float] = {}
    t = time.monotonic()
    probe = connect(url)
    api = Api.of(probe)
    probe.close()
    warm_up(url, api, upload_dir)
    phases["warm-up"] = time.monotonic() - t
    t = time.monotonic()
    baseline = settle(server_pid, seconds=settle_seconds, files_dir=files_dir)
    phases["settle before"] = time.monotonic() - t

    page = Page(url)
    sampler = MemorySampler(server_pid)
    sampler.start()
    room = Classroom(n_students)
    texts = student_texts(n_students, chars=chars)
    results = [StudentResult(i, name, text) for i, (name, text) in enumerate(texts)]
    turns = [threading.Event() for _ in results]
    threads = [threading.Thread(target=run_student, args=(url, api, room, r),
                                kwargs=dict(upload_dir=upload_dir, train_turn=turns[i], think_seconds=think_seconds,
                                            max_generations=max_generations, page=page), daemon=True)
               for i, r in enumerate(results)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    # Everyone uploads at once; then they press Train one after another, `stagger` apart, so
    # the queue order is known and "served in turn" can be checked.
    for ev, r in zip(turns, results):
        ev.set()
        r.pressed.wait()
        time.sleep(stagger_seconds)
    for th in threads:
        th.join()
    seconds = time.monotonic() - t0
    t = time.monotonic()
    final = settle(server_pid, seconds=settle_seconds, files_dir=files_dir)
    phases["settle after"] = time.monotonic() - t
    sampler.stop()
    peak = max(sampler.peak(), baseline)
    left = len(session_files(files_dir))
    report = ClassroomReport(results, baseline_mb=baseline, peak_mb=peak, final_mb=final,
                             idle_start_mb=idle_start, seconds=seconds, session_files_left=left,
                             load_average=os.getloadavg(), phases=phases)
    if cache_dir is not None and Path(cache_dir).exists():
        report.cache_mb = sum(f.stat().st_size for f in Path(cache_dir).rglob("*") if f.is_file()) / 2**20
    if compute_references:
        t = time.monotonic()
        report.references = {r.index: reference_first_step(r.text) for r in results}
        phases["references"] = time.monotonic() - t
    return report


