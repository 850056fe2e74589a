"""TFDS source: the real builders on fake downloads, exported without TF."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from clipstudy.data import (
    CorruptImageError,
    count_samples,
    decode_image,
    iter_samples,
    read_classes,
)
from clipstudy.datasets import tfds as ctfds
from clipstudy.datasets.common import shipped_classnames
from clipstudy.datasets.synthetic import TFDS_SOURCES, make_tfds_source

REPO = Path(__file__).resolve().parent.parent
STUDY_TFDS = [
    "caltech_birds2010",
    "caltech_birds2011",
    "cassava",
    "cats_vs_dogs",
    "citrus_leaves",
    "cmaterdb",
    "colorectal_histology",
    "deep_weeds",
    "dtd",
    "eurosat",
    "horses_or_humans",
    "imagenette",
    "imagewang",
    "malaria",
    "plant_village",
    "stanford_dogs",
    "uc_merced",
]


def _prepare(name, data_dir, local_source) -> subprocess.CompletedProcess:
    """Run download_and_prepare in a child process and print its record as JSON.

    TensorFlow stays out of the test process: importing open_clip after
    TensorFlow in one process crashes it.
    """
    code = (
        "import json\n"
        "from clipstudy.datasets.tfds import download_and_prepare\n"
        f"record = download_and_prepare({name!r}, {str(data_dir)!r}, "
        f"local_source={str(local_source)!r})\n"
        "print('RECORD' + json.dumps(record))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


@pytest.fixture(autouse=True)
def no_tensorflow_here():
    yield
    assert "tensorflow" not in sys.modules, "a test imported TensorFlow in-process"


@pytest.fixture(scope="module")
def cassava(tmp_path_factory):
    """Cassava prepared by its real builder from a fake source with one bad image."""
    folder = tmp_path_factory.mktemp("cassava")
    source = make_tfds_source("cassava", folder / "source", images_per_class=2, seed=1)
    with zipfile.ZipFile(source / "cassavaleafdata.zip", "a") as archive:
        archive.writestr("cassavaleafdata/test/cmd/test-cmd-broken.jpg", b"\xff\xd8no")
    data_dir = folder / "tfds"
    result = _prepare("cassava", data_dir, source)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(result.stdout.rpartition("RECORD")[2])
    return {"data_dir": data_dir, "record": record, "folder": folder}


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    """Every fake source prepared by its real builder, all in one child process."""
    folder = tmp_path_factory.mktemp("fakes")
    code = (
        "import json\n"
        "from clipstudy.datasets.synthetic import TFDS_SOURCES, make_tfds_source\n"
        "from clipstudy.datasets.tfds import download_and_prepare\n"
        "records = {}\n"
        "for name in sorted(TFDS_SOURCES):\n"
        f"    source = make_tfds_source(name, {str(folder)!r} + '/' + name)\n"
        f"    records[name] = download_and_prepare(name, {str(folder / 'tfds')!r}, "
        "local_source=source)\n"
        "print('RECORDS' + json.dumps(records))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads(result.stdout.rpartition("RECORDS")[2])
    return {"data_dir": folder / "tfds", "records": records}


@pytest.mark.parametrize("name", sorted(TFDS_SOURCES))
def test_every_fake_source_runs_its_real_builder(fakes, name, tmp_path):
    record = fakes["records"][name]
    n_labels = len(record["label_names"])
    per_class = 2  # make_tfds_source's default
    count = ctfds.export_split(name, "train", fakes["data_dir"], tmp_path)
    assert count == record["splits"]["train"] == per_class * n_labels

    rows = list(iter_samples(tmp_path / "train.parquet", ["sample_id", "label"]))
    assert sorted(r["label"] for r in rows) == sorted(list(range(n_labels)) * per_class)
    assert len({r["sample_id"] for r in rows}) == count
    if name in ("dtd", "caltech_birds2010"):  # ids from file_name, image/filename
        assert all(r["sample_id"].endswith(".jpg") for r in rows)

    ctfds.export_classes(name, fakes["data_dir"], tmp_path)
    names = read_classes(tmp_path / "classes.json")["classnames"]
    assert len(names["raw"]) == len(names["curated"]) == n_labels


def test_birds_label_name_that_disagrees_with_the_shipped_names_fails(
    fakes, tmp_path, monkeypatch
):
    shipped = shipped_classnames("tfds")
    wrong = {**shipped, "caltech_birds2010": dict(shipped["caltech_birds2010"])}
    wrong["caltech_birds2010"]["raw"] = [
        "albatross",
        *shipped["caltech_birds2010"]["raw"][1:],
    ]
    monkeypatch.setattr(ctfds, "shipped_classnames", lambda source: wrong)
    with pytest.raises(
        ValueError, match="label 0 named 'black_footed_albatross'.*'albatross'"
    ):
        ctfds.export_split("caltech_birds2010", "train", fakes["data_dir"], tmp_path)
    assert not (tmp_path / "train.parquet").exists()


def test_real_builder_prepares_every_split_from_the_local_source(cassava):
    record = cassava["record"]
    assert record["name"] == "cassava"
    assert record["splits"] == {"train": 10, "test": 11, "validation": 10}
    assert record["label_names"] == ["cbb", "cbsd", "cgm", "cmd", "healthy"]


def test_export_split_writes_rows_with_filenames_labels_and_images(cassava, tmp_path):
    count = ctfds.export_split("cassava", "train", cassava["data_dir"], tmp_path)
    rows = list(iter_samples(tmp_path / "train.parquet"))
    assert count == len(rows) == 10
    names = ["cbb", "cbsd", "cgm", "cmd", "healthy"]
    for row in rows:
        split, label_name, _ = row["sample_id"].split("-")
        assert split == "train"
        assert names[row["label"]] == label_name
        assert decode_image(row["image"], row["sample_id"]).size[1] == 20
    assert sorted(r["label"] for r in rows) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_export_is_stable_across_runs(cassava, tmp_path):
    ctfds.export_split("cassava", "validation", cassava["data_dir"], tmp_path / "a")
    ctfds.export_split("cassava", "validation", cassava["data_dir"], tmp_path / "b")
    first = list(iter_samples(tmp_path / "a" / "validation.parquet"))
    second = list(iter_samples(tmp_path / "b" / "validation.parquet"))
    assert first == second


def test_export_classes_writes_raw_and_curated_names(cassava, tmp_path):
    ctfds.export_classes("cassava", cassava["data_dir"], tmp_path)
    classes = read_classes(tmp_path / "classes.json")
    assert classes["classnames"]["raw"] == ["cbb", "cbsd", "cgm", "cmd", "healthy"]
    assert classes["classnames"]["curated"][0] == "cassava bacterial blight"
    assert classes["templates"] is None


def test_export_classes_takes_curated_names_and_checks_their_count(cassava, tmp_path):
    names = ["a", "b", "c", "d", "e"]
    ctfds.export_classes("cassava", cassava["data_dir"], tmp_path, curated=names)
    assert read_classes(tmp_path / "classes.json")["classnames"]["curated"] == names
    with pytest.raises(ValueError, match="4 class names for the 5 labels"):
        ctfds.export_classes(
            "cassava", cassava["data_dir"], tmp_path, curated=names[:4]
        )


def test_corrupt_image_fails_naming_the_file_or_is_skipped(cassava, tmp_path, caplog):
    with pytest.raises(CorruptImageError, match="test-cmd-broken.jpg"):
        ctfds.export_split("cassava", "test", cassava["data_dir"], tmp_path)
    assert not (tmp_path / "test.parquet").exists()
    count = ctfds.export_split(
        "cassava", "test", cassava["data_dir"], tmp_path, on_corrupt="skip"
    )
    assert count == 10
    assert "skipped 1 corrupt image" in caplog.text


def test_unknown_split_and_unprepared_dataset_are_named(cassava, tmp_path):
    with pytest.raises(ValueError, match="no split 'dev'.*train"):
        ctfds.export_split("cassava", "dev", cassava["data_dir"], tmp_path)
    with pytest.raises(FileNotFoundError, match="not prepared.*download_tfds"):
        ctfds.export_split("citrus_leaves", "train", cassava["data_dir"], tmp_path)


def test_unknown_dataset_name_suggests_close_ones():
    with pytest.raises(ValueError, match="no dataset 'casava'.*cassava"):
        ctfds.download_and_prepare("casava")


def test_local_source_names_the_missing_file(tmp_path):
    (tmp_path / "empty").mkdir()
    result = _prepare("cassava", tmp_path / "tfds", tmp_path / "empty")
    assert result.returncode != 0
    assert "local TFDS source has no file for" in result.stderr
    assert str(tmp_path / "empty" / "cassavaleafdata.zip") in result.stderr


def test_local_source_maps_urls_through_its_index(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.zip").write_bytes(b"x")
    (tmp_path / "urls.json").write_text(
        json.dumps({"https://x/uc?id=1": "files/a.zip"})
    )
    source = ctfds.LocalSource(tmp_path)
    assert source.resolve("https://x/uc?id=1") == tmp_path / "files" / "a.zip"
    with pytest.raises(FileNotFoundError, match="urls.json"):
        source.resolve("https://x/other.zip")


def test_class_names_checks_tfds_names_against_shipped_ones():
    raw, curated, study = ctfds.class_names(
        "cassava", ["cbb", "cbsd", "cgm", "cmd", "healthy"]
    )
    assert curated[-1] == "healthy cassava leaf"
    assert study == raw == ["cbb", "cbsd", "cgm", "cmd", "healthy"]
    wordnet = shipped_classnames("tfds")["imagenette"]["raw"]
    ids, _, words = ctfds.class_names("imagenette", wordnet)
    assert ids[0] == "n01440764" and words[0] == "tench"
    with pytest.raises(ValueError, match="differ from the shipped ones at index 1"):
        ctfds.class_names("cassava", ["cbb", "xx", "cgm", "cmd", "healthy"])
    with pytest.raises(ValueError, match="200 class names for the 3 labels"):
        ctfds.class_names("caltech_birds2011", ["0", "1", "2"])
    birds, _, _ = ctfds.class_names("caltech_birds2011", [str(i) for i in range(200)])
    assert birds[0] == "black_footed_albatross"
    assert ctfds.class_names("not_shipped", ["a_b", "c"]) == (
        ["a_b", "c"],
        ["a b", "c"],
        ["a_b", "c"],
    )


def test_shipped_names_cover_the_study_with_one_name_per_tfds_label():
    import tensorflow_datasets as tfds

    shipped = shipped_classnames("tfds")
    assert sorted(shipped) == STUDY_TFDS
    for name in STUDY_TFDS:
        label = tfds.builder(name).info.features["label"]
        entry = shipped[name]
        assert len(entry["raw"]) == len(entry["curated"]) == label.num_classes, name
        assert len(set(entry["raw"])) == label.num_classes, name
        if label.names[0] != "0":
            assert entry["raw"] == label.names, name
    assert shipped["imagenette"]["curated"][:2] == ["tench", "English Springer Spaniel"]
    assert shipped["stanford_dogs"]["raw"][0] == "n02085620-chihuahua"


def test_export_needs_no_tensorflow(cassava, tmp_path):
    data_dir, out = str(cassava["data_dir"]), str(tmp_path)
    code = (
        "import sys\n"
        "from clipstudy.datasets.tfds import export_classes, export_split\n"
        f"export_split('cassava', 'train', {data_dir!r}, {out!r})\n"
        f"export_classes('cassava', {data_dir!r}, {out!r})\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert count_samples(tmp_path / "train.parquet") == 10
