"""CLIP_benchmark WebDataset mirrors: local shards in the mirror's layout."""

import io
import json
import tarfile

import pytest

from clipstudy.data import CorruptImageError, decode_image, iter_samples, read_classes
from clipstudy.datasets import wds
from clipstudy.datasets.synthetic import make_wds_mirror


def test_repo_id_follows_the_mirror_naming():
    assert wds.repo_id("vtab/cifar10") == "clip-benchmark/wds_vtab-cifar10"
    assert wds.repo_id("imagenet-a") == "clip-benchmark/wds_imagenet-a"


def test_prepare_reads_every_shard_in_order(tmp_path):
    mirror = make_wds_mirror(tmp_path / "m", n_classes=3, images_per_class=3, shards=2)
    count = wds.prepare_wds(mirror, "test", tmp_path / "out")
    rows = list(iter_samples(tmp_path / "out" / "test.parquet"))
    assert count == len(rows) == 9
    assert [r["sample_id"] for r in rows] == [f"s{i:07d}" for i in range(9)]
    assert [r["label"] for r in rows] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert decode_image(rows[0]["image"]).size == (20, 20)


def test_classes_and_templates_come_from_the_mirror(tmp_path):
    mirror = make_wds_mirror(tmp_path / "m", n_classes=3)
    wds.export_wds_classes(mirror, tmp_path / "out")
    classes = read_classes(tmp_path / "out" / "classes.json")
    assert classes["classnames"]["raw"] == ["class a0", "class b1", "class c2"]
    assert classes["classnames"]["curated"] == classes["classnames"]["raw"]
    assert classes["templates"] == ["a photo of a {c}.", "a blurry photo of the {c}."]


def test_missing_split_shard_count_and_bad_labels_are_named(tmp_path):
    mirror = make_wds_mirror(tmp_path / "m", n_classes=2, shards=2)
    with pytest.raises(FileNotFoundError, match="no .tar shards.*'train'"):
        wds.prepare_wds(mirror, "train", tmp_path / "out")
    (mirror / "test" / "0.tar").unlink()
    with pytest.raises(FileNotFoundError, match="1 shard.*nshards.txt says 2"):
        wds.prepare_wds(mirror, "test", tmp_path / "out")
    (mirror / "test" / "nshards.txt").unlink()
    (mirror / "classnames.txt").write_text("only one\n")
    with pytest.raises(ValueError, match="label 1.*lists 1 classes"):
        wds.prepare_wds(mirror, "test", tmp_path / "out")


def test_corrupt_shard_image_fails_or_is_skipped(tmp_path):
    mirror = make_wds_mirror(tmp_path / "m", n_classes=2, images_per_class=1, shards=1)
    with tarfile.open(mirror / "test" / "0.tar", "a") as archive:
        for extension, data in (("jpg", b"\xff\xd8 not a jpeg"), ("cls", b"1")):
            info = tarfile.TarInfo(f"broken.{extension}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with pytest.raises(CorruptImageError, match="'broken'"):
        wds.prepare_wds(mirror, "test", tmp_path / "out")
    assert wds.prepare_wds(mirror, "test", tmp_path / "out", on_corrupt="skip") == 2


def test_download_uses_the_hub_cache_and_records_the_commit(tmp_path, monkeypatch):
    calls = []
    commit = "0123456789abcdef0123456789abcdef01234567"

    def fake_snapshot(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        snapshot = tmp_path / "hub" / "snapshots" / commit
        make_wds_mirror(snapshot, split="test", shards=1)
        return str(snapshot)

    monkeypatch.setattr(wds, "snapshot_download", fake_snapshot)
    out = wds.download_wds("vtab/cifar10", "test", "main", tmp_path / "mirror")
    assert out == tmp_path / "mirror"
    repo, kwargs = calls[0]
    assert repo == "clip-benchmark/wds_vtab-cifar10"
    assert kwargs["repo_type"] == "dataset" and kwargs["revision"] == "main"
    assert "local_dir" not in kwargs
    assert kwargs["allow_patterns"] == [
        "test/*",
        "classnames.txt",
        "zeroshot_classification_templates.txt",
    ]
    record = json.loads((out / "mirror.json").read_text())
    assert record["commit"] == commit and record["revision"] == "main"
    assert (out / "test").resolve() == tmp_path / "hub" / "snapshots" / commit / "test"
    assert wds.prepare_wds(out, "test", tmp_path / "out") == 6

    with pytest.raises(RuntimeError, match=f"at commit {'f' * 40}.*gave {commit}"):
        wds.download_wds("vtab/cifar10", "test", "f" * 40, tmp_path / "other")


def test_missing_classnames_file_is_named(tmp_path):
    mirror = make_wds_mirror(tmp_path / "m", n_classes=2)
    (mirror / "classnames.txt").unlink()
    for call in (
        lambda: wds.prepare_wds(mirror, "test", tmp_path / "out"),
        lambda: wds.export_wds_classes(mirror, tmp_path / "out"),
    ):
        with pytest.raises(FileNotFoundError, match="classnames.txt is missing.*again"):
            call()
