"""The offline smoke study: the whole workflow on tiny models and synthetic data.

Usage: python -m clipstudy.smoke OUTPUT_DIR [--cores N] [-- SNAKEMAKE_ARGS...]

It builds seeded tiny checkpoints, a fake TFDS source that the real cassava
builder prepares, a synthetic Miniplaces archive served from a file:// URL and
two scikit-image photos, writes a config for them, and runs Snakemake on CPU
with no network. Its numbers mean nothing; its outputs have every shape the
real study's have.
"""

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

from clipstudy.tiny import MODEL_CONFIGS, make_tiny_checkpoint

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
BANNER = (
    "Smoke study: every checkpoint here has random weights and every dataset is "
    "synthetic, so the numbers in this report mean nothing. It shows that the "
    "workflow runs end to end."
)
CHECKPOINTS = {
    "tiny-vit_seed0": ("tiny-vit", 0, "ViT-B-32 openai"),
    "tiny-vit_seed1": ("tiny-vit", 1, "ViT-B-16 openai"),
    "tiny-rn_seed0": ("tiny-rn", 0, "RN50 openai"),
}

# A profile named in the extra arguments replaces these defaults.
PROFILE_FLAGS = ("--workflow-profile", "--profile")
DEFAULT_FLAGS = ["--resources", "gpu=1", "--workflow-profile", "none"]


def make_assets(folder: Path) -> dict:
    """Write tiny checkpoints and synthetic sources into `folder`; return config."""
    from clipstudy.datasets.synthetic import (
        make_miniplaces_archive,
        make_tfds_source,
        make_wds_mirror,
    )
    from clipstudy.models import sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    checkpoints = {}
    for key, (model, seed, published) in CHECKPOINTS.items():
        path = make_tiny_checkpoint(model, folder / f"{key}.pt", seed=seed)
        checkpoints[key] = {
            "model": model,
            "pretrained": str(path),
            "published_as": published,
        }
    cassava = make_tfds_source("cassava", folder / "tfds-cassava", seed=0)
    archive = make_miniplaces_archive(folder / "miniplaces" / "data.tar.gz", seed=0)
    mirror = make_wds_mirror(folder / "wds-vtab-cifar10", n_classes=10, shards=2)
    # a second, smaller mirror stands in for a distribution shift of cifar10
    shifted = make_wds_mirror(
        folder / "wds-cifar10-shifted",
        n_classes=10,
        images_per_class=1,
        shards=1,
        seed=1,
    )
    devkit = archive.parent / "devkit"
    return {
        "checkpoints": checkpoints,
        "cassava": str(cassava),
        "cifar10": str(mirror),
        "cifar10_shifted": str(shifted),
        "miniplaces_url": archive.resolve().as_uri(),
        "miniplaces_sha256": sha256_file(archive),
        "devkit_url": devkit.resolve().as_uri(),
    }


def smoke_config(assets: dict) -> dict:
    """The smoke study's config: every stage of the real study, in miniature."""
    checkpoints = list(assets["checkpoints"])
    vit = [key for key in checkpoints if key.startswith("tiny-vit")]
    return {
        "data_dir": "data",
        "tfds_data_dir": "data/tfds",
        "model_configs": [str(MODEL_CONFIGS)],
        "evaluation": {
            "batch_size": 32,
            "text_batch_size": 64,
            "device": "cpu",
            "bootstrap_samples": 200,
            "bootstrap_seed": 0,
            "confidence": 0.95,
            "on_corrupt_image": "fail",
        },
        "checkpoints": assets["checkpoints"],
        "datasets": {
            "tfds-cassava": {
                "source": "tfds",
                "name": "cassava",
                "split": "train",
                "local_source": assets["cassava"],
            },
            "miniplaces": {
                "source": "miniplaces",
                "split": "val",
                "url": assets["miniplaces_url"],
                "sha256": assets["miniplaces_sha256"],
                "devkit_url": assets["devkit_url"],
            },
            "wds-vtab-cifar10": {
                "source": "wds",
                "name": "vtab/cifar10",
                "split": "test",
                "revision": "main",
                "local_source": assets["cifar10"],
            },
            "wds-cifar10-shifted": {
                "source": "wds",
                "name": "cifar10-shifted",
                "split": "test",
                "revision": "main",
                "local_source": assets["cifar10_shifted"],
            },
        },
        "prompts": {
            "study": {"templates": ["a photo of a {c}."], "classnames": "study"},
            "curated": {
                "templates": ["a photo of a {c}.", "itap of a {c}.", "art of the {c}."],
                "classnames": "curated",
            },
            "benchmark": {"templates": "dataset", "classnames": "study"},
        },
        "evaluations": {
            "tfds": {
                "checkpoints": checkpoints,
                "datasets": ["tfds-cassava"],
                "prompts": ["benchmark", "study", "curated"],
            },
            "miniplaces": {
                "checkpoints": checkpoints,
                "datasets": ["miniplaces"],
                "prompts": ["study"],
            },
            "clip_benchmark": {
                "checkpoints": checkpoints,
                "datasets": ["wds-vtab-cifar10"],
                "prompts": ["benchmark"],
            },
            # two checkpoints suffice for the fit line; each extra job costs seconds
            "robustness": {
                "checkpoints": ["tiny-vit_seed0", "tiny-rn_seed0"],
                "datasets": ["wds-cifar10-shifted"],
                "prompts": ["benchmark"],
            },
        },
        "relevance": {
            "start_layer": -1,
            "images": {
                "astronaut": {"skimage": "astronaut"},
                "coffee": {"skimage": "coffee"},
                "chelsea": {"skimage": "chelsea"},
                "gravel": {"skimage": "gravel"},
            },
            "experiments": {
                "portrait": {
                    "images": ["astronaut"],
                    "prompts": ["a photo of a woman", "a photo of a rocket"],
                    "checkpoints": checkpoints,
                },
                "breakfast": {
                    "images": ["coffee"],
                    "prompts": ["a cup of coffee", "a spoon"],
                    "checkpoints": vit,
                },
            },
            "scores": {"steps": 4, "baseline": "blur", "seed": 0},
            "localisation": {
                "checkpoints": vit[:1],
                "background": "gravel",
                "size": 128,
                "scale": 0.45,
                "objects": {
                    "cat": {"image": "chelsea", "prompt": "a photo of a cat"},
                    "cup": {"image": "coffee", "prompt": "a cup of coffee"},
                },
            },
        },
        "report": {
            "title": "clipstudy smoke study",
            "tolerance": 0.01,
            "banner": BANNER,
            "task_groups": {"plant": ["tfds-cassava"]},
            "robustness": {"reference": "vtab/cifar10", "shifts": ["cifar10-shifted"]},
        },
    }


def snakemake_command(output: Path, cores: int, extra: list[str]) -> list[str]:
    """The Snakemake call that runs the workflow of this checkout in `output`.

    Without a profile in `extra` it runs hermetically: no profile, one GPU slot.
    """
    profile_given = any(arg.split("=")[0] in PROFILE_FLAGS for arg in extra)
    defaults = [] if profile_given else DEFAULT_FLAGS
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(output),
        "--configfile",
        str(output / "config.yaml"),
        "--replace-workflow-config",
        "--cores",
        str(cores),
        *defaults,
        *extra,
    ]


def offline_environment(output: Path) -> dict[str, str]:
    """Environment with no hub access and every cache inside `output`."""
    cache = output / "cache"
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(cache / "huggingface"),
        "MPLCONFIGDIR": str(cache / "matplotlib"),
        "TFDS_DATA_DIR": str(output / "data" / "tfds"),
        "XDG_CACHE_HOME": str(cache),
        "MPLBACKEND": "Agg",
    }


def run(output: Path, cores: int = 2, extra: list[str] | None = None) -> int:
    """Build the smoke study's assets and config in `output`, then run Snakemake."""
    output = output.resolve()
    config = output / "config.yaml"
    if not config.exists():
        assets = make_assets(output / "assets")
        config.write_text(yaml.safe_dump(smoke_config(assets), sort_keys=False))
        log.info("wrote the smoke study's assets and config to %s", output)
    command = snakemake_command(output, cores, extra or [])
    log.info("running %s", " ".join(command))
    return subprocess.run(command, env=offline_environment(output)).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="folder for the whole smoke study")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("snakemake_args", nargs="*", help="extra Snakemake arguments")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run(args.output, args.cores, args.snakemake_args)


if __name__ == "__main__":
    sys.exit(main())
