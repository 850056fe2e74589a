"""Find, fetch and load checkpoints: an open_clip model name plus tag or file."""

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz")


@dataclass(frozen=True)
class Checkpoint:
    """An open_clip model name with its pretrained tag or local weights file."""

    model: str
    pretrained: str

    @property
    def is_file(self) -> bool:
        return (
            self.pretrained.endswith(CHECKPOINT_SUFFIXES) or os.sep in self.pretrained
        )

    def __str__(self) -> str:
        return f"{self.model}/{Path(self.pretrained).name}"


def register_model_configs(folders: Iterable[str | os.PathLike]) -> None:
    """Make open_clip know the model-config JSON files in `folders`."""
    import open_clip

    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"model_configs: {folder} is not a folder; give a folder of "
                "open_clip model-config JSON files"
            )
        open_clip.add_model_config(folder)


def check_checkpoint(checkpoint: Checkpoint) -> None:
    """Raise ValueError naming the fix if open_clip cannot load this checkpoint."""
    import open_clip

    if checkpoint.model not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if _similar(m, checkpoint.model)]
        hint = f" (did you mean {', '.join(close[:5])}?)" if close else ""
        raise ValueError(
            f"unknown open_clip model {checkpoint.model!r}{hint}; see "
            "open_clip.list_models() or add its config folder to model_configs"
        )
    if checkpoint.is_file:
        if not Path(checkpoint.pretrained).is_file():
            raise ValueError(
                f"checkpoint file {checkpoint.pretrained} of {checkpoint.model} does "
                "not exist; fix the path or use a tag from open_clip.list_pretrained()"
            )
        return
    tags = open_clip.list_pretrained_tags_by_model(checkpoint.model)
    if checkpoint.pretrained.lower().replace("-", "_") not in tags:
        raise ValueError(
            f"{checkpoint.model} has no pretrained tag {checkpoint.pretrained!r}; "
            f"known tags: {', '.join(tags) or 'none'}"
        )


def _similar(a: str, b: str) -> bool:
    return a.lower().replace("-quickgelu", "") == b.lower().replace("-quickgelu", "")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch_checkpoint(checkpoint: Checkpoint, cache_dir: str | None = None) -> dict:
    """Download a hub checkpoint into the cache (or check a local file); describe it.

    Run where the network is reachable; GPU jobs later load the same file offline.
    """
    import open_clip

    check_checkpoint(checkpoint)
    if checkpoint.is_file:
        path = Path(checkpoint.pretrained).resolve()
    else:
        config = open_clip.get_pretrained_cfg(checkpoint.model, checkpoint.pretrained)
        try:
            path = Path(open_clip.download_pretrained(config, cache_dir=cache_dir))
        except Exception as error:
            raise RuntimeError(
                f"could not download {checkpoint} ({error}); check the network "
                "or place the weights file locally and give its path as pretrained"
            ) from error
    info = {
        "model": checkpoint.model,
        "pretrained": checkpoint.pretrained,
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }
    log.info("checkpoint %s at %s (sha256 %s)", checkpoint, path, info["sha256"][:12])
    return info


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when asked for or available under `auto`, else CPU; fail without CUDA."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {requested!r} asked for, but no CUDA GPU is visible; use "
            "evaluation.device: auto or cpu, or run where a GPU is present"
        )
    return torch.device(requested)


def load_checkpoint(
    checkpoint: Checkpoint,
    device: torch.device | str = "cpu",
    model_configs: Iterable[str | os.PathLike] = (),
):
    """Load a checkpoint for inference; return (model, preprocess, tokenizer).

    A hub tag and a local file go through the same open_clip call.
    """
    import open_clip

    register_model_configs(model_configs)
    check_checkpoint(checkpoint)
    model, _, preprocess = open_clip.create_model_and_transforms(
        checkpoint.model, pretrained=checkpoint.pretrained, device=device
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(checkpoint.model)
    return model, preprocess, tokenizer


def load_fetched(
    checkpoint_json: str | os.PathLike,
    device: torch.device | str = "cpu",
    model_configs: Iterable[str | os.PathLike] = (),
):
    """Load the checkpoint a fetch_checkpoint job recorded; offline-safe.

    It loads by model name and pretrained tag, not by the cached file's path:
    a tag also selects its preprocessing (some LAION checkpoints normalise with
    mean 0.5), which a bare file would lose.
    """
    import json

    info = json.loads(Path(checkpoint_json).read_text())
    checkpoint = Checkpoint(info["model"], info["pretrained"])
    return load_checkpoint(checkpoint, device, model_configs)
