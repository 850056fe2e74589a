"""The dataset rules, run by Snakemake on every source's offline stand-in."""

import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from clipstudy.data import count_samples, read_classes
from clipstudy.datasets.download import sha256_of
from clipstudy.datasets.synthetic import (
    fake_image,
    make_miniplaces_archive,
    make_tfds_source,
    make_wds_mirror,
)
from clipstudy.tiny import MODEL_CONFIGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SNAKEFILE = f"""
configfile: "config.yaml"


include: "{REPO}/rules/common.smk"
include: "{REPO}/rules/datasets.smk"
"""


def _config(tmp_path, checkpoint) -> dict:
    assets = tmp_path / "assets"
    cassava = make_tfds_source("cassava", assets / "cassava", images_per_class=1)
    archive = make_miniplaces_archive(
        assets / "miniplaces" / "data.tar.gz", n_classes=3
    )
    (assets / "pets" / "cat").mkdir(parents=True)
    (assets / "pets" / "dog").mkdir()
    import numpy as np

    rng = np.random.default_rng(0)
    for label, name in enumerate(["cat", "dog"]):
        (assets / "pets" / name / "a.png").write_bytes(fake_image(rng, label, (8, 8)))
    (assets / "pets.csv").write_text("path,label\npets/dog/a.png,dog\n")
    return {
        "data_dir": "data",
        "tfds_data_dir": "data/tfds",
        "model_configs": [str(MODEL_CONFIGS)],
        "checkpoints": {"tiny": {"model": "tiny-vit", "pretrained": str(checkpoint)}},
        "datasets": {
            "tfds-cassava": {
                "source": "tfds",
                "name": "cassava",
                "split": "train",
                "local_source": str(cassava),
            },
            "miniplaces": {
                "source": "miniplaces",
                "split": "val",
                "url": archive.as_uri(),
                "sha256": sha256_of(archive),
                "devkit_url": (archive.parent / "devkit").as_uri(),
            },
            "wds-fake": {
                "source": "wds",
                "name": "vtab/pets",
                "split": "test",
                "revision": "main",
            },
            "pets": {
                "source": "folder",
                "split": "test",
                "path": str(assets / "pets"),
                "templates": ["a photo of my {c}."],
            },
            "pets-csv": {
                "source": "csv",
                "split": "test",
                "csv": str(assets / "pets.csv"),
            },
        },
        "prompts": {"study": {"templates": ["a photo of a {c}."], "classnames": "raw"}},
        "evaluations": {
            "miniplaces": {
                "checkpoints": ["tiny"],
                "datasets": ["miniplaces"],
                "prompts": ["study"],
            }
        },
    }


def test_every_source_reaches_the_prepared_format_through_its_rules(
    tmp_path, tiny_checkpoints
):
    config = _config(tmp_path, tiny_checkpoints["tiny-vit"])
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    (work / "Snakefile").write_text(SNAKEFILE)
    # the hub is out of reach: the mirror stands where download_wds would put it
    make_wds_mirror(work / "data" / "downloads" / "wds" / "wds-fake", n_classes=2)
    predictions = work / "results" / "predictions" / "tiny" / "miniplaces" / "test"
    predictions.mkdir(parents=True)
    # every test image needs a prediction; two are given distinct top-5 lists
    ids = ["test/00000002.jpg", "test/00000001.jpg"]
    ids += [f"test/{i:08d}.jpg" for i in range(3, 7)]
    top5 = [[2, 1, 0, 0, 0], [1, 0, 2, 2, 2]] + [[0, 1, 2, 0, 1]] * 4
    pq.write_table(
        pa.table({"sample_id": ids, "label": [-1] * 6, "top5": top5}),
        predictions / "study.parquet",
    )
    prepared = [
        f"data/prepared/{dataset}/{name}"
        for dataset, split in [
            ("tfds-cassava", "train"),
            ("miniplaces", "val"),
            ("wds-fake", "test"),
            ("pets", "test"),
            ("pets-csv", "test"),
        ]
        for name in (f"{split}.parquet", "classes.json")
    ]
    submission = ["results/miniplaces/tiny/study/submission_top5.txt"]
    env = {**os.environ, "PYTHONPATH": REPO}
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        *prepared,
        *submission,
    ]
    result = subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]

    data = work / "data" / "prepared"
    assert count_samples(data / "tfds-cassava" / "train.parquet") == 5
    assert (
        read_classes(data / "tfds-cassava" / "classes.json")["classnames"]["raw"][0]
        == "cbb"
    )
    assert count_samples(data / "miniplaces" / "val.parquet") == 6
    assert count_samples(data / "miniplaces" / "test.parquet") == 6
    assert count_samples(data / "wds-fake" / "test.parquet") == 4
    assert read_classes(data / "wds-fake" / "classes.json")["templates"]
    assert count_samples(data / "pets" / "test.parquet") == 2
    assert read_classes(data / "pets" / "classes.json")["templates"] == [
        "a photo of my {c}."
    ]
    assert read_classes(data / "pets-csv" / "classes.json")["templates"] is None
    assert count_samples(data / "pets-csv" / "test.parquet") == 1
    assert (work / submission[0]).read_text().splitlines()[:3] == [
        "test/00000001.jpg 1 0 2 2 2",
        "test/00000002.jpg 2 1 0 0 0",
        "test/00000003.jpg 0 1 2 0 1",
    ]
    logs = sorted(
        p.relative_to(work / "logs").parts[0] for p in (work / "logs").rglob("*.log")
    )
    assert sorted(set(logs)) == [
        "download_miniplaces",
        "download_tfds",
        "prepare_folder",
        "prepare_folder_classes",
        "prepare_miniplaces",
        "prepare_tfds",
        "prepare_tfds_classes",
        "prepare_wds",
        "prepare_wds_classes",
        "unzip_miniplaces",
        "write_miniplaces_submission",
    ]
