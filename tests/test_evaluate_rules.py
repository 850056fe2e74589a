"""The encoding rules: a shared preprocessing is cached, a lone one is streamed."""

import os
import subprocess
import sys

import numpy as np
import yaml

from clipstudy.datasets.synthetic import fake_image
from clipstudy.evaluate import read_features
from clipstudy.tiny import MODEL_CONFIGS, make_tiny_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SNAKEFILE = f"""
configfile: "config.yaml"


include: "{REPO}/rules/common.smk"
include: "{REPO}/rules/datasets.smk"
include: "{REPO}/rules/evaluate.smk"
"""


def test_shared_preprocessing_is_cached_and_a_lone_one_streamed(tmp_path):
    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for label, name in enumerate(["cat", "dog", "owl"]):
        (photos / name).mkdir(parents=True)
        for index in range(4):
            image = fake_image(rng, label, (48, 40))
            (photos / name / f"{index}.png").write_bytes(image)
    checkpoints = {
        f"tiny{seed}": make_tiny_checkpoint("tiny-vit", tmp_path / f"{seed}.pt", seed)
        for seed in (0, 1)
    }
    folder = {"source": "folder", "split": "test", "path": str(photos)}
    config = {
        "data_dir": "data",
        "model_configs": [str(MODEL_CONFIGS)],
        "checkpoints": {
            key: {"model": "tiny-vit", "pretrained": str(path)}
            for key, path in checkpoints.items()
        },
        "datasets": {"shared": folder, "alone": folder},
        "prompts": {"study": {"templates": ["a photo of a {c}."], "classnames": "raw"}},
        "evaluations": {
            "shared": {
                "checkpoints": ["tiny0", "tiny1"],
                "datasets": ["shared"],
                "prompts": ["study"],
            },
            "alone": {
                "checkpoints": ["tiny0"],
                "datasets": ["alone"],
                "prompts": ["study"],
            },
        },
    }
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    (work / "Snakefile").write_text(SNAKEFILE)
    targets = [f"results/features/tiny0/{d}/test.parquet" for d in ("shared", "alone")]
    env = {**os.environ, "PYTHONPATH": REPO}
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *targets],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    decoded = sorted(
        p.parent.name for p in (work / "logs/decode_images").rglob("*.log")
    )
    assert decoded == ["test"]
    assert (work / "logs/decode_images/shared").is_dir()
    assert not (work / "logs/decode_images/alone").exists()
    ids_a, labels_a, cached = read_features(work / targets[0])
    ids_b, labels_b, streamed = read_features(work / targets[1])
    assert len(ids_a) == 12 and ids_a == ids_b
    assert (labels_a == labels_b).all()
    assert np.abs(cached - streamed).max() < 1e-5
