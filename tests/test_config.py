import copy
from pathlib import Path

import pytest
import yaml

from clipstudy.config import (
    ConfigError,
    check_checkpoints,
    check_datasets,
    evaluation_jobs,
    load_schema,
    validate_config,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def study() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    return load_schema()


def test_study_config_is_valid_and_plans_the_whole_study(study, schema):
    validate_config(study, schema)
    check_checkpoints(study)
    check_datasets(study)
    jobs = evaluation_jobs(study)
    tfds = {d for _, d, _, _ in jobs if d.startswith("tfds-")}
    wds = {d for _, d, _, _ in jobs if d.startswith("wds-")}
    assert len(tfds) == 17 and len(wds) == 35
    assert {s for _, d, s, _ in jobs if d.startswith("tfds-")} == {"train"}
    miniplaces = {m for m, d, _, _ in jobs if d == "miniplaces"}
    assert miniplaces == {"ViT-L-14_laion2b_s32b_b82k", "RN50_openai", "RN101_openai"}
    assert len({m for m, d, _, _ in jobs if d == "tfds-cassava"}) == 13
    assert len(jobs) == 13 * 17 * 3 + 13 * 35 + 3 * 2


def test_openai_checkpoints_use_quickgelu(study):
    for key, spec in study["checkpoints"].items():
        if spec["pretrained"] == "openai":
            assert spec["model"].endswith("-quickgelu"), key


def _broken(study, path: str, value):
    config = copy.deepcopy(study)
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("evaluaton", {}, r"config key \(top level\): unknown key\(s\) evaluaton"),
        ("evaluation.batch_size", "big", "evaluation.batch_size: 'big' is not of type"),
        (
            "checkpoints.ViT-B-32_openai.pretraind",
            "openai",
            "checkpoints.ViT-B-32_openai: unknown key",
        ),
        ("prompts.study.templates", ["a photo of a {}."], "has no {c}"),
        ("datasets", KeyError, "'datasets' is a required property"),
        (
            "evaluations.tfds.prompts",
            ["study", "fancy"],
            "evaluations.tfds.prompts: unknown id 'fancy'",
        ),
        ("evaluation.on_corrupt_image", "ignore", "on_corrupt_image"),
        (
            "relevance.experiments.portrait.prompts",
            ["a photo of a woman", "  "],
            r"relevance.experiments.portrait.prompts.1: '  ' is blank",
        ),
    ],
)
def test_bad_config_gets_one_line_naming_the_key(study, schema, path, value, message):
    with pytest.raises(ConfigError, match=message) as error:
        validate_config(_broken(study, path, value), schema)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"model": "ViT-B-33", "pretrained": "openai"}, "unknown open_clip model"),
        ({"model": "ViT-B-32", "pretrained": "laion9b"}, "has no pretrained tag"),
        ({"model": "ViT-B-32", "pretrained": "/nowhere/w.pt"}, "does not exist"),
    ],
)
def test_unknown_checkpoint_is_refused(study, spec, message):
    config = _broken(study, "checkpoints.ViT-B-32_openai", spec)
    with pytest.raises(ConfigError, match=f"checkpoints.ViT-B-32_openai: .*{message}"):
        check_checkpoints(config)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"source": "wds", "name": "vtab/cifar11", "split": "test"},
            r"CLIP_benchmark has no WebDataset mirror 'vtab/cifar11' "
            r"\(did you mean vtab/cifar10.*known mirrors are cars, ",
        ),
        (
            {"source": "tfds", "name": "casava", "split": "train"},
            r"TFDS has no dataset 'casava' \(did you mean cassava",
        ),
    ],
)
def test_unknown_dataset_name_is_refused(study, spec, message):
    config = _broken(study, "datasets.wds-cars", spec)
    with pytest.raises(ConfigError, match=f"datasets.wds-cars.name: {message}"):
        check_datasets(config)


def test_a_mirror_copied_to_disk_may_have_any_name(study):
    spec = {"source": "wds", "name": "mine", "split": "test", "local_source": "x"}
    check_datasets(_broken(study, "datasets.wds-cars", spec))
