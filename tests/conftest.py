"""Offline, isolated test session: no hub, caches in a temporary folder."""

import os
import tempfile
from pathlib import Path

import pytest

_CACHE = Path(tempfile.mkdtemp(prefix="clipstudy-test-cache-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(_CACHE / "hf")
os.environ["MPLCONFIGDIR"] = str(_CACHE / "mpl")
os.environ["TFDS_DATA_DIR"] = str(_CACHE / "tfds")
os.environ["XDG_CACHE_HOME"] = str(_CACHE / "xdg")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Seeded tiny open_clip checkpoints saved as local files, once per session."""
    from clipstudy.tiny import TINY_MODELS, make_tiny_checkpoint

    folder = tmp_path_factory.mktemp("checkpoints")
    return {m: make_tiny_checkpoint(m, folder / f"{m}.pt", seed=0) for m in TINY_MODELS}
