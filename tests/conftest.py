import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference import seed_tiktoken_cache  # noqa: E402

from gpt_core.corpus import ASSETS_DIR as ASSETS  # noqa: E402  (the package's own data files)

seed_tiktoken_cache()
# Same thread count everywhere, so bit-exact comparisons don't depend on the machine.
torch.set_num_threads(int(os.environ.get("GPT_TEST_THREADS", "2")))

SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def verdict_text() -> str:
    return (ASSETS / "the-verdict.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser(app):
    """One headless Chromium for a browser test module, after its `app` is up."""
    from browser_kit import launch_chromium
    with launch_chromium() as one:
        yield one
