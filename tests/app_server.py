"""The one launcher of the app for tests, benchmarks and scripts: `python app.py` in a
subprocess on 127.0.0.1, stopped afterwards, and what can be read of it from outside (its
log, resident memory, CPU time, the sessions' files).

The server gets its own folders under `workdir` (the sessions' files, Gradio's file cache,
GPT-2 models), so it touches nothing of the machine's, and environment overrides (PLAYGROUND_*)
tune its limits. Test support: benchmarks/ and scripts/ import it from here (they put tests/
on sys.path), so there is one launcher and tests import nothing from benchmarks/.

    with AppServer(tmp_path / "app", env={"PLAYGROUND_MAX_UPLOAD_MB": "1"}) as server:
        Client(server.url) ...
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The client and browser tests' server (what they launched before there was one launcher):
# one training at a time on any machine, so a second run queues, and a 1 MB upload limit, so
# going past it costs a test 1.5 MB.
SMALL_SERVER = {"PLAYGROUND_TRAIN_CONCURRENCY": "1", "PLAYGROUND_MAX_UPLOAD_MB": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used: on a busy shared machine a better guide
    to how long a step takes on an idle one than the wall clock."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class AppServer:
    """`python app.py` (run from `cwd`) serving http://127.0.0.1:PORT/ once constructed; a
    context manager that stops it on exit. Its folders: `files_dir` (the sessions' files),
    `gradio_dir` (Gradio's cache), `models_dir` (GPT-2), `log_path` (stdout and stderr)."""

    def __init__(self, workdir: str | Path, *, env: dict[str, str] | None = None, port: int | None = None,
                 startup_timeout: float = 180.0, cwd: str | Path = ROOT):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.gradio_dir = self.workdir / "gradio-cache"
        self.files_dir = self.workdir / "session-files"
        self.models_dir = self.workdir / "models"
        self.log_path = self.workdir / "server.log"
        full_env = {
            **os.environ,
            "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_TEMP_DIR": str(self.gradio_dir), "PLAYGROUND_FILES_DIR": str(self.files_dir),
            "GPT2_MODELS_DIR": str(self.models_dir),
            "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        full_env.pop("SPACE_ID", None)  # a test run on a Space still launches a local server
        self._log = open(self.log_path, "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=cwd, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        self.cpu_seconds_to_serve = cpu_seconds(self.pid)

    def _wait_ready(self, timeout: float) -> None:
        """Until the page itself is served (what a browser waits for), the process ends, or
        `timeout` seconds pass."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"app.py did not serve {self.url} within {timeout:.0f} s:\n{self.log()[-3000:]}")

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
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


def session_files(files_dir: Path | None) -> list[Path]:
    """The files the server keeps for its sessions (checkpoints offered, spilled models)."""
    return [p for p in Path(files_dir).rglob("*") if p.is_file()] if files_dir and Path(files_dir).exists() else []


def settle(server_pid: int, *, seconds: float, quiet: float = 3.0, files_dir: Path | None = None) -> float:
    """Wait until the sessions' files are gone (their sessions released) and the server's
    memory stops falling, or `seconds` pass; return its memory then (MB)."""
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
