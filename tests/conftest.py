import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference import seed_tiktoken_cache  # noqa: E402

seed_tiktoken_cache()
# Same thread count everywhere, so bit-exact comparisons don't depend on the machine.
torch.set_num_threads(int(os.environ.get("GPT_TEST_THREADS", "2")))

SHARED_DATA = ROOT.parent / "shared" / "data"
ASSETS = ROOT / "assets"


@pytest.fixture(scope="session")
def verdict_text() -> str:
    return (ASSETS / "the-verdict.txt").read_text(encoding="utf-8")
