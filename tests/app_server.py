"""Test helper: launch `python app.py` on 127.0.0.1 in a subprocess and stop it afterwards.

Shared by the gradio_client and browser tests. The server gets its own folders (checkpoints,
GPT-2 models) under a temporary directory and a small upload limit, so tests can hit it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


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


@contextmanager
def running_app(tmp: Path, *, env: dict[str, str] | None = None, timeout: float = 180.0,
                cwd: Path = ROOT) -> Iterator[dict]:
    """Start the app (from `cwd`); yield {"url", "seconds_to_serve", "log"}; stop it on exit."""
    port = free_port()
    log_path = tmp / "app.log"
    environment = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
        "PLAYGROUND_FILES_DIR": str(tmp / "sessions"), "GPT2_MODELS_DIR": str(tmp / "models"),
        "PLAYGROUND_TRAIN_CONCURRENCY": "1", "PLAYGROUND_MAX_UPLOAD_MB": "1",
        **(env or {}),
    }
    environment.pop("SPACE_ID", None)
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=cwd, env=environment,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the app exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url, timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() - start > timeout:
                    raise RuntimeError(f"the app did not serve within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            yield {"url": url, "seconds_to_serve": time.monotonic() - start, "log": log_path,
                   "pid": proc.pid, "cpu_seconds_to_serve": cpu_seconds(proc.pid)}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
