"""`pip install <checkout>` gives a gpt_core that works on its own: the vocabulary and the sample
texts travel inside the package (read through importlib.resources from the installed copy), and
`import gpt_core` / `python -m gpt_core` work from any working directory. The app, which runs
from the checkout (app.py's folder is on sys.path), is started from another directory too.

The environment, honest and fast. pip builds the package from a copy of the checkout (the files
git tracks or would track: an in-tree build writes build/ and gpt_core.egg-info/ into its source
folder) and installs it into a new virtual environment in a temporary folder, made with
`python -m venv --without-pip`: gpt_core lands in that environment's own site-packages and is
imported from there, never from the checkout. What it depends on (torch, tiktoken, numpy,
safetensors) is not downloaded again: one `.pth` line puts this test run's site-packages *behind*
the new environment's, and pip (this run's pip, seen through that line) installs with
`--no-index`, so every requirement of pyproject.toml must be found already satisfied, in range,
or the install fails. `--system-site-packages` would not do this (it exposes the base
interpreter's site-packages, not the project's virtual environment), and `--no-deps` would skip
checking the requirements. Not tested here: fetching the dependencies from an index.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSET_FILES = sorted(p.relative_to(ROOT).as_posix() for folder in ("assets", "kernels")
                     for p in (ROOT / "gpt_core" / folder).rglob("*") if p.is_file())

# Run from a temporary folder: two optimizer steps of the demo preset on a bundled text, a
# checkpoint, a few generated tokens; prints where everything came from.
TRAIN_AND_GENERATE = """
import json
from pathlib import Path

import gpt_core
from gpt_core import TrainConfig, generate, get_preset, get_tokenizer, prepare_training
from gpt_core import text_to_token_ids, token_ids_to_text
from gpt_core.corpus import SAMPLE_CORPORA, load_sample
from gpt_core.tokenizers import GPT2_VOCAB_DIR
from gpt_core.train_events import CheckpointEvent, DoneEvent, StepEvent

preset = get_preset("demo")
tokenizer = get_tokenizer(preset.tokenizer)
trainer = prepare_training(
    load_sample(), tokenizer=tokenizer, model_config=preset.config, checkpoint_dir="run",
    config=TrainConfig(max_steps=2, eval_freq=1, eval_iter=1, sample_tokens=0, threads=2, device="cpu"))
events = list(trainer.run())
ids = generate(trainer.model.eval(), text_to_token_ids("Every effort moves you", tokenizer), 5,
               preset.config.context_length)
print(json.dumps({
    "package": str(Path(gpt_core.__file__).resolve().parent),
    "data": [str(Path(str(p)).resolve()) for p in (*SAMPLE_CORPORA.values(), GPT2_VOCAB_DIR)],
    "steps": sum(isinstance(e, StepEvent) for e in events),
    "done": isinstance(events[-1], DoneEvent),
    "checkpoint": [e.path for e in events if isinstance(e, CheckpointEvent)][-1],
    "new_tokens": ids.shape[1] - 4,
    "text": token_ids_to_text(ids, tokenizer),
}))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no user site-packages, no pip configuration or package sources."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    return {**env, "PYTHONNOUSERSITE": "1", "PIP_CONFIG_FILE": os.devnull, **extra}


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _pip(python: Path | str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _run([str(python), "-m", "pip", *args, "--no-index", "--no-build-isolation",
                 "--disable-pip-version-check"], cwd=cwd)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the checkout as git sees it (tracked and not ignored files), else of the folder."""
    target = tmp_path_factory.mktemp("checkout") / "src"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:  # not a git checkout: the folder without what .gitignore names
        ignored = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "dist", "*.egg-info",
                                         "test-artifacts", "runs", "checkpoints", "models")
        shutil.copytree(ROOT, target, ignore=ignored)
        return target
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():  # (a tracked file deleted in the working tree is skipped)
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def venv(checkout, tmp_path_factory) -> Path:
    """A new environment with gpt_core pip-installed from the checkout's copy; its python."""
    home = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(home / "env")], cwd=home)
    python = home / "env" / "bin" / "python"
    site_packages = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              cwd=home).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site_packages / "_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    _pip(python, "install", str(checkout), cwd=home)
    return python


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_the_package_data(checkout, tmp_path):
    _pip(sys.executable, "wheel", "--no-deps", "-w", str(tmp_path), str(checkout), cwd=tmp_path)
    (wheel,) = tmp_path.glob("gpt_core-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(checkout).as_posix() for p in (checkout / "gpt_core").rglob("*.py")}
    assert modules and modules <= names, sorted(modules - names)
    assert ASSET_FILES and set(ASSET_FILES) <= names, sorted(set(ASSET_FILES) - names)
    assert not any(n.startswith(("playground/", "tests/", "benchmarks/", "scripts/")) for n in names)


@pytest.mark.slow
def test_installed_package_trains_and_generates_from_any_directory(venv, tmp_path):
    elsewhere = tmp_path / "notebook"
    elsewhere.mkdir()
    result = json.loads(_run([str(venv), "-c", TRAIN_AND_GENERATE], cwd=elsewhere).stdout.splitlines()[-1])
    package = Path(result["package"])
    assert venv.parent.parent in package.parents, package  # the installed copy ...
    assert ROOT not in package.parents  # ... not the checkout
    assert all(package in Path(p).parents and Path(p).exists() for p in result["data"]), result["data"]
    assert result["steps"] == 2 and result["done"]
    assert result["new_tokens"] == 5 and result["text"].startswith("Every effort moves you")

    # The command line from the same folder: help, and a command on the run just saved.
    assert "train" in _run([str(venv), "-m", "gpt_core", "--help"], cwd=elsewhere).stdout
    assert (elsewhere / result["checkpoint"]).is_file()  # written relative to the working directory
    info = json.loads(_run([str(venv), "-m", "gpt_core", "inspect", "run/checkpoint.pt"], cwd=elsewhere).stdout)
    assert info["steps"] == 2


def test_engine_requirements_are_the_ones_in_requirements_txt():
    """pyproject.toml lists the engine's runtime needs and requirements.txt the app's; the
    engine's lines are the same in both (the reasons for each floor are in requirements.txt)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    engine = [*project["dependencies"], *(req for extra in project["optional-dependencies"].values() for req in extra)]
    listed = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert set(engine) <= set(listed), sorted(set(engine) - set(listed))
    assert not any(req.startswith(("gradio", "plotly", "tensorflow")) for req in project["dependencies"])


@pytest.mark.slow
def test_the_app_serves_the_bundled_texts_when_started_from_another_directory(tmp_path):
    from gradio_client import Client

    from app_server import SMALL_SERVER, AppServer

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with AppServer(tmp_path, env=SMALL_SERVER, cwd=elsewhere) as app:
        client = Client(app.url, verbose=False)
        outputs = client.predict("Tiny Shakespeare", "GPT-2 BPE", 64, 8, 0, api_name="/choose_sample")
    assert "1,115,394" in json.dumps(outputs, ensure_ascii=False), outputs
