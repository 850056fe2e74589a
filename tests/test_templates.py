"""The templates the benchmark prompt set gives TFDS datasets are CLIP_benchmark's."""

import json
import subprocess
from pathlib import Path

import pytest

from clipstudy.templates import clip_benchmark_tfds_templates, prompt_set_for

REPO = Path(__file__).resolve().parent.parent
CB_PYTHON = REPO / ".venv-cb" / "bin" / "python"
CB_TEMPLATES = """
from importlib.resources import files
name = "en_zeroshot_classification_templates.json"
print((files("clip_benchmark") / "datasets" / name).read_text())
"""


@pytest.fixture(scope="module")
def clip_benchmark_templates() -> dict:
    if not CB_PYTHON.exists():
        pytest.skip("needs .venv-cb (bash benchmarks/setup_clip_benchmark_env.sh)")
    run = subprocess.run(
        [str(CB_PYTHON), "-c", CB_TEMPLATES], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("name", ["dtd", "eurosat", "cassava", "stanford_dogs"])
def test_tfds_templates_are_clip_benchmarks_lookup(name, clip_benchmark_templates):
    expected = clip_benchmark_templates.get(
        name, clip_benchmark_templates["imagenet1k"]
    )
    assert clip_benchmark_tfds_templates(name) == expected


def test_every_tfds_template_names_the_class_once():
    for name in ("dtd", "eurosat", "malaria"):
        templates = clip_benchmark_tfds_templates(name)
        assert templates and all(t.count("{c}") == 1 for t in templates)
    assert len(clip_benchmark_tfds_templates("malaria")) == 80


def test_dataset_templates_resolve_for_tfds_only():
    benchmark = {"templates": "dataset", "classnames": "study"}
    dtd = prompt_set_for(benchmark, {"source": "tfds", "name": "dtd"})
    assert dtd == {
        "templates": clip_benchmark_tfds_templates("dtd"),
        "classnames": "study",
    }
    assert benchmark["templates"] == "dataset"
    assert prompt_set_for(benchmark, {"source": "wds", "name": "cars"}) == benchmark
    own = {"templates": ["a {c}."], "classnames": "raw"}
    assert prompt_set_for(own, {"source": "tfds", "name": "dtd"}) == own
