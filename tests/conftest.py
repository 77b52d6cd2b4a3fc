import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference import seed_tiktoken_cache  # noqa: E402
from app_server import AppServer  # noqa: E402
from threads import torch_threads  # noqa: E402

from gpt_core.config import GPTConfig  # noqa: E402
from gpt_core.corpus import ASSETS_DIR as ASSETS  # noqa: E402  (the package's own data files)
from gpt_core.model import GPTModel  # noqa: E402
from gpt_core.tokenizers import CharTokenizer  # noqa: E402

seed_tiktoken_cache()
# Same thread count everywhere, so bit-exact comparisons don't depend on the machine.
torch.set_num_threads(int(os.environ.get("GPT_TEST_THREADS", "2")))

SHARED_DATA = ROOT.parent / "shared" / "data"
# A tiny model on GPT-2's vocabulary: what the generation and KV-cache tests compare with the book.
TINY = GPTConfig(vocab_size=50257, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.1)


@pytest.fixture(scope="session")
def verdict_text() -> str:
    return (ASSETS / "the-verdict.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def text(verdict_text) -> str:
    """The first 3,000 characters of The Verdict: a corpus tiny models train on in seconds."""
    return verdict_text[:3000]


@pytest.fixture(scope="module")
def tok(text) -> CharTokenizer:
    """The character tokenizer of `text`."""
    return CharTokenizer.from_text(text)


@pytest.fixture(scope="module")
def pair():
    """Ours and the book's GPTModel of TINY, seed 123 each (so the same weights), in eval mode."""
    from llms_from_scratch.ch04 import GPTModel as BookGPTModel

    torch.manual_seed(123)
    ours = GPTModel(TINY).eval()
    torch.manual_seed(123)
    book = BookGPTModel(TINY.to_dict()).eval()
    return ours, book


@pytest.fixture(scope="module")
def launch_app(tmp_path_factory):
    """`launch_app(name, env=...)` starts `python app.py` (app_server.AppServer) in a folder
    of its own and returns it serving; every server a module started stops at its end."""
    servers: list[AppServer] = []

    def launch(name: str = "app", **options) -> AppServer:
        servers.append(AppServer(tmp_path_factory.mktemp(name), **options))
        return servers[-1]

    yield launch
    for server in servers:
        server.stop()


@pytest.fixture
def one_thread():
    """One torch thread for the test (tiny models; see threads.py). Taken by a module with
    `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_per_module():
    """One torch thread for a whole module, so that its module-scoped fixtures (models built
    once and shared) run under it too."""
    with torch_threads(1):
        yield


@pytest.fixture
def restore_threads():
    """For a test that sets the thread count itself (as the CLI's --threads does): put it back."""
    with torch_threads():
        yield


@pytest.fixture(scope="module")
def browser(app):
    """One headless Chromium for a browser test module, after its `app` is up."""
    from browser_kit import launch_chromium
    with launch_chromium() as one:
        yield one
