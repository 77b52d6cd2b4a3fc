"""A classroom at once: N simulated students drive the launched app through gradio_client.

Each student is its own client (its own Gradio session, heartbeat included, as a browser
tab): uploads a different text, trains the fast demo preset for one short epoch, generates
with their model while the others still train, scores their validation text, and leaves
(closes the client, which fires the app's unload). Meanwhile a thread samples the server's
resident memory (VmRSS in /proc/PID/status).

Checked, and printed as a table:
  * every student saw their own text (name, size, first characters) and the curve of their
    own text: the first batch loss and the first evaluation equal a run of the same options
    on that student's text computed here with gpt_core (no dropout, so runs are exact);
  * queued students saw their place in the queue fall, and trainings started in the order
    they were queued; no request failed or was lost;
  * generation latency (p50 / p95) while trainings run;
  * memory: baseline (after one warm-up session), peak, and final once everyone left; the
    sessions' checkpoint folders are removed.

    python benchmarks/load_classroom.py                  # 20 students, launches app.py
    python benchmarks/load_classroom.py --students 30 --env PLAYGROUND_TRAIN_CONCURRENCY=2
    python benchmarks/load_classroom.py --url http://127.0.0.1:7860   # a running server

tests/test_classroom.py runs the same code with 5 students.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
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


# --- the server ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class AppServer:
    """`python app.py` in a subprocess on 127.0.0.1, with its own Gradio cache and session
    folders under `workdir`. Environment overrides (PLAYGROUND_*) tune its limits."""

    def __init__(self, workdir: str | Path, *, env: dict[str, str] | None = None, port: int | None = None,
                 startup_timeout: float = 180.0):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.gradio_dir = self.workdir / "gradio-cache"
        self.files_dir = self.workdir / "session-files"
        self.log_path = self.workdir / "server.log"
        full_env = dict(os.environ)
        full_env.update({
            "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_TEMP_DIR": str(self.gradio_dir), "PLAYGROUND_FILES_DIR": str(self.files_dir),
            "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
        })
        full_env.update(env or {})
        self._log = open(self.log_path, "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self._wait_ready(startup_timeout)
        self.startup_seconds = time.monotonic() - t0

    def _wait_ready(self, timeout: float) -> None:
        import httpx

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "config", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"app.py did not serve {self.url} within {timeout} s:\n{self.log()[-3000:]}")

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def __enter__(self) -> "AppServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class MemorySampler(threading.Thread):
    """Samples a process's VmRSS every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append((time.monotonic(), rss_mb(self.pid)))
            except (OSError, RuntimeError):
                return
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def peak(self, since: float = 0.0) -> float:
        return max((m for t, m in self.samples if t >= since), default=float("nan"))


def connect(url: str):
    """A gradio_client Client as a student's tab: its own session and heartbeat. Timeouts
    are generous because a loaded 2-core server answers slowly, which is measured, not lost."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 300})


# --- the API, by field labels ---------------------------------------------------------------
class Api:
    """Build an endpoint's argument list from the app's own API description: values are
    given by (the start of) a field's label, the rest take the app's defaults. So the script
    follows the app when fields move."""

    def __init__(self, info: dict[str, Any]):
        self.endpoints = info["named_endpoints"]

    @classmethod
    def of(cls, client) -> "Api":
        return cls(client.view_api(print_info=False, return_format="dict"))

    def args_by_label(self, endpoint: str, values: dict[str, Any]) -> list[Any]:
        params = self.endpoints[endpoint]["parameters"]
        out, used = [], set()
        for p in params:
            label = p.get("label") or ""
            key = next((k for k in values if label == k or label.startswith(k)), None)
            if key is not None:
                out.append(values[key])
                used.add(key)
            elif p.get("parameter_has_default"):
                out.append(p.get("parameter_default"))
            else:
                raise KeyError(f"{endpoint}: no value for the field {label!r}")
        unused = set(values) - used
        if unused:
            raise KeyError(f"{endpoint} has no field labelled {sorted(unused)}")
        return out


class Page:
    """What a browser does when it opens the page: run the app's load events (the data view,
    the estimate, the sampling lab) in its session, through the queue like every event."""

    def __init__(self, url: str):
        import httpx

        config = httpx.get(url + "config", timeout=60).json()
        self.prefix = config.get("api_prefix", "/gradio_api").strip("/")
        components = {c["id"]: c for c in config["components"]}
        self.loads = [(d["id"], [components[i].get("props", {}).get("value") for i in d["inputs"]])
                      for d in config["dependencies"] if any(t[1] == "load" for t in d["targets"])]

    def open(self, url: str, session_hash: str) -> tuple[float, list[str]]:
        """Seconds until every load event finished, and what went wrong."""
        import json

        import httpx

        t0, errors, pending = time.perf_counter(), [], set()
        with httpx.Client(timeout=300) as http:
            for fn_index, data in self.loads:
                r = http.post(f"{url}{self.prefix}/queue/join",
                              json={"data": data, "fn_index": fn_index, "session_hash": session_hash,
                                    "event_data": None, "trigger_id": 0})
                if r.status_code != 200:
                    errors.append(f"page load event {fn_index}: HTTP {r.status_code} {r.text[:120]}")
                else:
                    pending.add(r.json()["event_id"])
            if pending:
                with http.stream("GET", f"{url}{self.prefix}/queue/data", params={"session_hash": session_hash}) as st:
                    for line in st.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        msg = json.loads(line[5:])
                        if msg.get("msg") == "process_completed" and msg.get("event_id") in pending:
                            pending.discard(msg["event_id"])
                            if not msg.get("success"):
                                errors.append(f"page load event failed: {str(msg.get('output'))[:200]}")
                        elif msg.get("msg") == "queue_full":
                            errors.append("page load event refused: the queue is full")
                            pending.discard(msg.get("event_id"))
                        if not pending or msg.get("msg") == "close_stream":
                            break
            if pending:
                errors.append(f"{len(pending)} page load event(s) never finished")
        return time.perf_counter() - t0, errors


def train_args(api: Api, **overrides: Any) -> list[Any]:
    return api.args_by_label("/train", {**TRAIN_OPTIONS, **overrides})


def plot_traces(plot_value: Any) -> dict[str, tuple[list, list]]:
    """name -> (x, y) of a gr.Plot output (a Plotly figure as JSON)."""
    import json

    fig = json.loads(plot_value["plot"]) if isinstance(plot_value, dict) else plot_value
    return {t.get("name"): (list(t.get("x") or []), list(t.get("y") or [])) for t in fig.get("data", [])
            if t.get("name")}


def queue_place(status: str) -> int | None:
    """How many trainings are ahead, from the Train tab's status while it waits in the app's
    training queue ("Waiting: **2** trainings ahead of you ..."); None once it trains."""
    m = re.match(r"Waiting: \*\*(\d+)\*\* trainings? ahead of you", status or "")
    return int(m.group(1)) if m else None


def markdown_number(text: str, label: str) -> float:
    m = re.search(re.escape(label) + r"[^|]*\|\s*\**([-0-9.,e+inf]+)", text)
    if not m:
        raise ValueError(f"no {label!r} in {text[:300]!r}")
    return float(m.group(1).replace(",", ""))


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
    import torch

    threads = torch.get_num_threads()
    # One thread: this runs beside a busy server on a shared machine, where a second
    # spinning thread costs more than it gives. The numbers are the same (checked).
    torch.set_num_threads(1)
    try:
        return _reference_first_step(text, model, train, tok_kind)
    finally:
        torch.set_num_threads(threads)


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


def settle(server_pid: int, *, seconds: float, quiet: float = 3.0, files_dir: Path | None = None) -> float:
    """Wait until the sessions' checkpoint files are gone (their sessions released) and the
    server's memory stops falling, or `seconds` pass; return its memory then."""
    end = time.monotonic() + seconds
    last, since = rss_mb(server_pid), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.5)
        now = rss_mb(server_pid)
        if now < last - 1.0:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet and not session_files(files_dir):
            break
    return rss_mb(server_pid)


def session_files(files_dir: Path | None) -> list[Path]:
    return [p for p in Path(files_dir).rglob("*") if p.is_file()] if files_dir and Path(files_dir).exists() else []


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


# --- checks ----------------------------------------------------------------------------------------
def check(report: ClassroomReport, *, memory_per_student_mb: float = 400.0,
          return_fraction: float = 0.25, tol: float = 1e-4) -> list[str]:
    """Everything the issue asks of a classroom; returns the failures as sentences."""
    bad: list[str] = []
    students = report.students
    for r in students:
        who = f"student {r.index + 1} ({r.name})"
        if r.errors:
            bad.append(f"{who}: {r.errors}")
            continue
        # Their own text, as they uploaded it.
        if f"Uploaded: {r.name}" not in r.summary:
            bad.append(f"{who}: the data summary names another text: {r.summary[:120]!r}")
        if f"| Characters | {len(r.text):,} " not in r.summary:
            bad.append(f"{who}: the summary does not count their {len(r.text):,} characters")
        if not r.preview.startswith(r.text[:2_000]):
            bad.append(f"{who}: the preview shows another text")
        if not r.train_status.startswith("Done"):
            bad.append(f"{who}: training ended with {r.train_status[:160]!r}")
        if not any(f"Uploaded: {r.name}" in s for s in r.run_statuses):
            bad.append(f"{who}: the run never said it trains on their text")
        others = {o.name for o in students} - {r.name}
        if any(f"Uploaded: {o}" in s for s in r.run_statuses for o in others):
            bad.append(f"{who}: the run's status names another student's text")
        ref = report.references.get(r.index)
        if ref is not None:
            if r.steps_done != ref["total_steps"]:
                bad.append(f"{who}: trained {r.steps_done} steps, their text gives {ref['total_steps']}")
            if not r.step_losses or abs(r.step_losses[0] - ref["step_loss"]) > tol:
                bad.append(f"{who}: first batch loss {r.step_losses[:1]} is not their text's {ref['step_loss']:.6f}")
            if not r.eval_val or abs(r.eval_val[0] - ref["val_loss"]) > tol or \
                    abs(r.eval_train[0] - ref["train_loss"]) > tol:
                bad.append(f"{who}: first evaluation {r.eval_train[:1]}/{r.eval_val[:1]} is not their "
                           f"text's {ref['train_loss']:.6f}/{ref['val_loss']:.6f}")
        if r.n_updates < 2:
            bad.append(f"{who}: only {r.n_updates} chart update(s) while training")
        if not r.generations or not all(text.startswith(PROMPT) and len(text) > len(PROMPT)
                                        for _, _, _, text in r.generations):
            bad.append(f"{who}: generation returned nothing new")
        if r.eval_loss is None or not math.isfinite(r.eval_loss):
            bad.append(f"{who}: evaluation gave no finite loss")
        # Place in the queue: it only falls while waiting.
        ranks = [rank for _, rank in r.ranks]
        if any(b > a for a, b in zip(ranks, ranks[1:])):
            bad.append(f"{who}: place in the queue went up: {ranks}")
    if report.references:
        firsts = sorted(ref["val_loss"] for ref in report.references.values())
        if len(firsts) > 1 and min(b - a for a, b in zip(firsts, firsts[1:])) <= tol:
            bad.append("two students' texts give the same first evaluation: the curve check cannot tell them apart")
    # Served in turn: trainings start in the order they were submitted.
    ok = [r for r in students if not r.errors]
    by_submit = sorted(ok, key=lambda r: r.submitted)
    starts = [r.started for r in by_submit]
    late = [(a.index + 1, b.index + 1) for a, b in zip(by_submit, by_submit[1:])
            if b.started < a.started - 0.5]
    if late:
        bad.append(f"trainings did not start in queue order (student pairs {late}); starts {starts}")
    if len(students) > 2 and not any(r.queued for r in students):
        bad.append("no student ever waited in the queue: the load did not exercise it")
    # Memory.
    growth = report.peak_mb - report.baseline_mb
    if growth > memory_per_student_mb * len(students):
        bad.append(f"memory grew by {growth:.0f} MB, more than {memory_per_student_mb:.0f} MB a student")
    kept = report.final_mb - report.baseline_mb
    if growth > 0 and kept > max(return_fraction * growth, 150.0):
        bad.append(f"memory did not return after the sessions ended: {kept:.0f} MB above the baseline "
                   f"(peak {growth:.0f} MB above)")
    if report.session_files_left:
        bad.append(f"{report.session_files_left} session checkpoint file(s) left after everyone left")
    return bad


def format_table(report: ClassroomReport, settings: dict[str, Any]) -> str:
    row = report.row()
    la = report.load_average
    lines = [
        "| students | trainings queued | completed | errors | page ready p50/p95 s | generations | gen p50 s "
        "| gen p95 s | baseline MB | peak MB | final MB | wall s | load avg (1/5/15 min) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {row['students']} | {row['queued']} | {row['completed']} | {row['errors']} | "
        f"{row['page_p50']:.1f} / {row['page_p95']:.1f} | {row['gen_n']} | "
        f"{row['gen_p50']:.2f} | {row['gen_p95']:.2f} | {row['baseline_mb']:.0f} | {row['peak_mb']:.0f} | "
        f"{row['final_mb']:.0f} | {row['seconds']:.0f} | {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} |",
        "",
        "settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        f"generation latency = one /generate call of {GEN_TOKENS} tokens while other students' trainings "
        f"were queued or running (p95 over all generations: {row['gen_all_p95']:.2f} s)",
        "phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report.phases.items()),
        f"Gradio's file cache on disk afterwards (checkpoints offered for download): {report.cache_mb:.0f} MB",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--chars", type=int, default=9_000, help="characters of each student's text")
    p.add_argument("--url", help="drive a server already running (memory needs --pid)")
    p.add_argument("--pid", type=int, help="process id of the server given by --url")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment of the launched app (e.g. PLAYGROUND_TRAIN_CONCURRENCY=2)")
    p.add_argument("--no-reference", action="store_true", help="skip recomputing each first step here")
    args = p.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        if args.url:
            if not args.pid:
                p.error("--url needs --pid (the server's process id, for its memory)")
            server, url, pid, files_dir = None, args.url, args.pid, None
        else:
            server = AppServer(tmp, env=env)
            url, pid, files_dir = server.url, server.pid, server.files_dir
            print(f"app.py served {url} after {server.startup_seconds:.1f} s (pid {pid})", flush=True)
        try:
            report = run_classroom(url, pid, args.students, workdir=Path(tmp), chars=args.chars,
                                   files_dir=files_dir, compute_references=not args.no_reference,
                                   cache_dir=server.gradio_dir if server is not None else None)
        finally:
            if server is not None:
                server.stop()
                if "Traceback" in server.log():
                    print("server log:\n" + server.log()[-4000:])
    import torch

    settings = {"cores": os.cpu_count(), "torch": torch.__version__, **env}
    print(format_table(report, settings))
    print()
    print("| student | queue places seen | waited s | trained s | steps | first val loss | gen p50 s | eval loss |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in report.students:
        ranks = ",".join(str(rank) for _, rank in r.ranks) or "-"
        gens = [s for _, s, _, _ in r.generations]
        print(f"| {r.name} | {ranks[:40]} | {r.started - r.submitted:.1f} | {r.finished - r.started:.1f} | "
              f"{r.steps_done} | {(r.eval_val or [math.nan])[0]:.4f} | {percentile(gens, 50):.2f} | "
              f"{r.eval_loss if r.eval_loss is not None else math.nan:.3f} |")
    failures = check(report)
    print()
    if failures:
        print("FAILED:")
        for f in failures:
            print(" -", f)
        return 1
    print("All checks passed: own texts and curves, queue order and places, no lost request, "
          "memory back near the baseline, no session files left.")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
