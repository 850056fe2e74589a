"""A user's images: one sub-folder per class, or a CSV of path,label rows."""

import numpy as np
import pytest

from clipstudy.data import CorruptImageError, iter_samples, read_classes
from clipstudy.datasets.synthetic import fake_image
from clipstudy.datasets.user import export_user_classes, prepare_user_images


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for label, name in enumerate(["sea_lion", "cat"]):
        (root / name).mkdir(parents=True)
        for i in range(2):
            (root / name / f"{i}.png").write_bytes(
                fake_image(rng, label, (8, 8), "PNG")
            )
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_folder_classes_are_sorted_sub_folders(folder, tmp_path):
    count = prepare_user_images(tmp_path / "out", "test", path=folder)
    rows = list(iter_samples(tmp_path / "out" / "test.parquet", ["sample_id", "label"]))
    assert count == 4
    assert [(r["sample_id"], r["label"]) for r in rows] == [
        ("cat/0.png", 0),
        ("cat/1.png", 0),
        ("sea_lion/0.png", 1),
        ("sea_lion/1.png", 1),
    ]
    export_user_classes(tmp_path / "out", path=folder, templates=["a {c}."])
    classes = read_classes(tmp_path / "out" / "classes.json")
    assert classes["classnames"] == {
        "raw": ["cat", "sea_lion"],
        "study": ["cat", "sea_lion"],
        "curated": ["cat", "sea lion"],
    }
    assert classes["templates"] == ["a {c}."]


def test_folder_classnames_fix_the_order(folder, tmp_path, caplog):
    (folder / "unused").mkdir()
    caplog.set_level("INFO")
    prepare_user_images(tmp_path, "test", path=folder, classnames=["sea_lion", "cat"])
    assert "left out 1 sub-folder(s)" in caplog.text and "unused" in caplog.text
    assert "left out 1 file(s)" in caplog.text
    labels = [r["label"] for r in iter_samples(tmp_path / "test.parquet", ["label"])]
    assert labels == [0, 0, 1, 1]
    with pytest.raises(ValueError, match=r"\['dog'\] have no sub-folder"):
        prepare_user_images(tmp_path, "test", path=folder, classnames=["dog"])


def test_csv_rows_become_samples(folder, tmp_path):
    table = folder / "list.csv"
    table.write_text("path,label\ncat/1.png,cat\nsea_lion/0.png,sea_lion\n")
    assert prepare_user_images(tmp_path, "val", csv_path=table) == 2
    rows = list(iter_samples(tmp_path / "val.parquet", ["sample_id", "label"]))
    assert [(r["sample_id"], r["label"]) for r in rows] == [
        ("cat/1.png", 0),
        ("sea_lion/0.png", 1),
    ]
    export_user_classes(tmp_path, csv_path=table)
    assert read_classes(tmp_path / "classes.json")["classnames"]["raw"] == [
        "cat",
        "sea_lion",
    ]


def test_csv_errors_name_the_problem(folder, tmp_path):
    table = tmp_path / "bad.csv"
    table.write_text("file,class\na.png,cat\n")
    with pytest.raises(ValueError, match="'path' and 'label' columns"):
        prepare_user_images(tmp_path, "val", csv_path=table)
    table.write_text("path,label\nmissing.png,cat\n")
    with pytest.raises(FileNotFoundError, match="bad.csv:2: image .*missing.png"):
        prepare_user_images(tmp_path, "val", csv_path=table)
    with pytest.raises(ValueError, match=r"labels \['cat'\].*not in classnames"):
        prepare_user_images(tmp_path, "val", csv_path=table, classnames=["dog"])
    with pytest.raises(ValueError, match="exactly one of path"):
        prepare_user_images(tmp_path, "val", path=folder, csv_path=table)


def test_corrupt_user_image_fails_naming_it_or_is_skipped(folder, tmp_path):
    (folder / "cat" / "2.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(CorruptImageError, match="cat/2.jpg"):
        prepare_user_images(tmp_path, "test", path=folder)
    assert prepare_user_images(tmp_path, "test", path=folder, on_corrupt="skip") == 4
    with pytest.raises(ValueError, match="fail, skip"):
        prepare_user_images(tmp_path, "test", path=folder, on_corrupt="ignore")
