"""Estimate memory, wall time and threads of each job from checkpoint and dataset size.

The numbers go to the scheduler (Snakemake locally, Slurm on a cluster); they are
deliberately generous upper bounds, scaled by the retry attempt, not predictions.
"""

import math
import os
from dataclasses import dataclass

# Images of a split whose size is unknown before it is prepared: ImageNet's
# validation split, about the size of the largest splits the study evaluates.
DEFAULT_IMAGES = 50_000
# Host memory of a Python process with torch, CUDA and open_clip loaded.
BASE_MB = 3_000
# Host memory of one data-loading worker process with a few batches in flight.
WORKER_MB = 800
# Bytes held per image while scoring: features, top-5 indices and scores, copies.
SCORE_BYTES_PER_IMAGE = 16 * 1024
# Conservative sustained throughput of one data-centre GPU under bf16 autocast.
GPU_FLOPS = 20e12
# Images one worker process reads and normalises per second from the decoded cache.
IMAGES_PER_WORKER_SECOND = 400
# Minutes every GPU job spends starting Python, CUDA and loading the checkpoint.
STARTUP_MINUTES = 5
# Margin on the estimated wall time: shared GPUs, slow file systems, cold caches.
RUNTIME_MARGIN = 2.0
# Steps a GPU job of the workflow performs.
STEPS = ("encode", "evaluate", "relevance")


@dataclass(frozen=True)
class TowerSize:
    """Size of a CLIP model: image tower, whole model, cost of one image."""

    image_mparams: float
    total_mparams: float
    image_gflops: float
    embed_dim: int


# Image tower and whole-model parameters (millions) and image-tower GFLOPs per
# image, from open_clip's published model profile; keyed by model name without
# the -quickgelu suffix (the activation changes no size).
TOWER_SIZES = {
    "RN50": TowerSize(38.3, 102.0, 12.2, 1024),
    "RN101": TowerSize(56.3, 119.7, 19.5, 512),
    "RN50x4": TowerSize(87.1, 178.3, 42.6, 640),
    "RN50x16": TowerSize(167.3, 291.0, 149.4, 768),
    "RN50x64": TowerSize(420.4, 623.3, 529.1, 1024),
    "ViT-B-32": TowerSize(87.9, 151.3, 8.8, 512),
    "ViT-B-32-256": TowerSize(87.9, 151.3, 11.5, 512),
    "ViT-B-16": TowerSize(86.2, 149.6, 35.1, 512),
    "ViT-B-16-plus-240": TowerSize(117.2, 208.4, 54.8, 640),
    "ViT-L-14": TowerSize(304.0, 427.6, 162.0, 768),
    "ViT-L-14-336": TowerSize(304.3, 427.9, 381.9, 768),
    "ViT-H-14": TowerSize(632.1, 986.1, 334.6, 1024),
    "ViT-g-14": TowerSize(1012.7, 1366.7, 534.1, 1024),
    "ViT-bigG-14": TowerSize(1844.9, 2539.6, 967.5, 1280),
    "convnext_base_w": TowerSize(88.2, 179.4, 40.1, 640),
    "convnext_large_d": TowerSize(199.8, 351.8, 89.8, 768),
    "convnext_xxlarge": TowerSize(846.5, 1200.6, 395.9, 1024),
}
# For a model open_clip describes only through timm or Hugging Face: ViT-L-14.
FALLBACK = TOWER_SIZES["ViT-L-14"]


def tower_size(model: str) -> TowerSize:
    """Size of open_clip model `model`: from the table, else from its config."""
    family = model.removesuffix("-quickgelu")
    if family in TOWER_SIZES:
        return TOWER_SIZES[family]
    import open_clip

    config = open_clip.get_model_config(model)
    if config is None:
        raise ValueError(
            f"unknown open_clip model {model!r}; see open_clip.list_models() or add "
            "its config folder to model_configs"
        )
    return estimate_tower_size(config)


def estimate_tower_size(config: dict) -> TowerSize:
    """Rough size of a model from its open_clip config (for models not in the table)."""
    vision = config.get("vision_cfg", {})
    text = config.get("text_cfg", {})
    layers, width = vision.get("layers"), vision.get("width")
    if layers is None or width is None:
        return FALLBACK
    image_size = vision.get("image_size", 224)
    image_size = max(image_size) if isinstance(image_size, list) else image_size
    if isinstance(layers, int):
        # a transformer block holds about 12 width^2 weights; each token passes
        # each weight once (2 FLOPs per multiply-add)
        image = 12 * layers * width**2
        tokens = (image_size // vision.get("patch_size", 16)) ** 2 + 1
        gflops = 2 * image * tokens / 1e9
    else:
        # bottleneck stages of a modified ResNet, planes doubling per stage;
        # stem and attention pool roughly double it
        image = 2 * sum(17 * (width * 2**i) ** 2 * n for i, n in enumerate(layers))
        gflops = 0.32 * image / 1e6 * (image_size / 224) ** 2
    text_params = 12 * text.get("layers", 12) * text.get("width", 512) ** 2
    text_params += text.get("vocab_size", 49408) * text.get("width", 512)
    return TowerSize(
        image_mparams=image / 1e6,
        total_mparams=(image + text_params) / 1e6,
        image_gflops=gflops,
        embed_dim=config.get("embed_dim", 512),
    )


def split_images(spec: dict, prepared: str | os.PathLike | None = None) -> int:
    """Images in a dataset split: counted once prepared, else from config or default.

    `spec` is the dataset's config entry; its optional `images` key gives the
    count before the split exists.
    """
    if prepared is not None and os.path.exists(prepared):
        from clipstudy.data import count_samples

        return count_samples(prepared)
    images = spec.get("images", DEFAULT_IMAGES)
    if not isinstance(images, int) or images < 1:
        raise ValueError(
            f"dataset images: {images!r} is not a positive whole number; give the "
            "approximate number of images of the evaluated split, or leave it out"
        )
    return images


def loader_threads(images: int, most: int = 8) -> int:
    """Threads for decoding and loading a split: one per 10,000 images, 2 to `most`."""
    return max(2, min(most, 1 + math.ceil(images / 10_000)))


def gpu_mem_mb(
    step: str, model: str, images: int, threads: int = 1, attempt: int = 1
) -> int:
    """Host memory (MB) of GPU job `step`: checkpoint, loaders, held results."""
    size = _size_of(step, model)
    # a checkpoint is in memory twice while it loads: state dict and model
    weights_mb = size.total_mparams * 4 * 2
    if step == "encode":
        extra = max(0, threads - 1) * WORKER_MB
    elif step == "evaluate":
        extra = images * SCORE_BYTES_PER_IMAGE / 1e6
    else:
        # gradients and attention maps of every block for the relevance pass
        extra = size.total_mparams * 4 * 2
    return _round_up(attempt * (BASE_MB + weights_mb + extra), 500)


def gpu_runtime(
    step: str, model: str, images: int, threads: int = 1, attempt: int = 1
) -> int:
    """Wall time (minutes) of GPU job `step` on `images` images, with a margin."""
    size = _size_of(step, model)
    if step == "encode":
        gpu_seconds = images * size.image_gflops * 1e9 / GPU_FLOPS
        load_seconds = images / (IMAGES_PER_WORKER_SECOND * max(1, threads - 1))
        minutes = (gpu_seconds + load_seconds) / 60
    elif step == "evaluate":
        # text tower on every class and template, then bootstrap resampling
        minutes = 5 + images / 10_000
    else:
        minutes = 2 + size.image_gflops / 100
    return _round_up(attempt * (STARTUP_MINUTES + RUNTIME_MARGIN * minutes), 5)


def cpu_mem_mb(images: int, threads: int = 1, attempt: int = 1) -> int:
    """Host memory (MB) of a CPU job that streams a split: workers plus buffers."""
    return _round_up(
        attempt * (1_000 + threads * WORKER_MB + images * 2_000 / 1e6), 500
    )


def cpu_runtime(images: int, threads: int = 1, attempt: int = 1) -> int:
    """Wall time (minutes) of a CPU job that reads, decodes or writes every image."""
    minutes = images / (50 * max(1, threads)) / 60
    return _round_up(attempt * (10 + RUNTIME_MARGIN * minutes), 5)


def _size_of(step: str, model: str) -> TowerSize:
    if step not in STEPS:
        raise ValueError(f"unknown GPU step {step!r}; choose one of {STEPS}")
    return tower_size(model)


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)
