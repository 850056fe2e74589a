"""Tiny open_clip checkpoints with seeded random weights, for offline runs and tests."""

import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)

MODEL_CONFIGS = Path(__file__).with_name("model_configs")
TINY_MODELS = ("tiny-vit", "tiny-rn")


def make_tiny_checkpoint(model: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """Build `model` from its bundled config with seeded weights; save its state dict.

    The file loads through open_clip's `pretrained=<path>` like any real checkpoint.
    """
    import open_clip

    if model not in TINY_MODELS:
        raise ValueError(f"unknown tiny model {model!r}; choose one of {TINY_MODELS}")
    open_clip.add_model_config(MODEL_CONFIGS)
    torch.manual_seed(seed)
    clip = open_clip.create_model(model, pretrained=None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(clip.state_dict(), path)
    log.info("saved %s with seed %d to %s", model, seed, path)
    return path
