"""Miniplaces: download from file:// and local HTTP, unpack, index, submit."""

import http.server
import io
import tarfile
import threading
import urllib.error
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipstudy.data import CorruptImageError, iter_samples, read_classes, write_classes
from clipstudy.datasets import download as dl
from clipstudy.datasets import miniplaces as mp
from clipstudy.datasets.synthetic import make_miniplaces_archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("miniplaces-source")
    return make_miniplaces_archive(
        folder / "data.tar.gz", n_classes=4, images_per_class=3
    )


def test_synthetic_archive_is_reproducible(archive, tmp_path):
    again = make_miniplaces_archive(
        tmp_path / "data.tar.gz", n_classes=4, images_per_class=3
    )
    assert again.read_bytes() == archive.read_bytes()


def test_download_unzip_prepare_from_file_urls(archive, tmp_path):
    digest = dl.sha256_of(archive)
    devkit = (archive.parent / "devkit").as_uri()
    downloaded = mp.download_miniplaces(
        archive.as_uri(), tmp_path / "dl", sha256=digest, devkit_url=devkit
    )
    assert downloaded.read_bytes() == archive.read_bytes()
    images = mp.unzip_miniplaces(downloaded, tmp_path / "extracted" / "images")
    assert sorted(p.name for p in images.iterdir()) == ["test", "train", "val"]
    counts = mp.prepare_miniplaces(
        images,
        tmp_path / "dl" / "categories.txt",
        tmp_path / "dl" / "val.txt",
        tmp_path / "out",
    )
    assert counts == {"val": 12, "test": 12}

    val_lines = (tmp_path / "dl" / "val.txt").read_text().split("\n")
    expected = [(line.split()[0], int(line.split()[1])) for line in val_lines if line]
    val = list(iter_samples(tmp_path / "out" / "val.parquet", ["sample_id", "label"]))
    assert [(r["sample_id"], r["label"]) for r in val] == expected
    test = list(iter_samples(tmp_path / "out" / "test.parquet", ["sample_id", "label"]))
    assert [r["sample_id"] for r in test] == [f"test/{i:08d}.jpg" for i in range(1, 13)]
    assert {r["label"] for r in test} == {-1}

    classes = read_classes(tmp_path / "out" / "classes.json")
    assert classes["classnames"]["raw"] == [
        "/a/abbey",
        "/a/airport_terminal",
        "/a/amphitheater",
        "/a/amusement_park",
    ]
    assert classes["classnames"]["curated"][1] == "airport terminal"


def test_label_files_come_from_the_archive_without_devkit_url(archive, tmp_path):
    mp.download_miniplaces(archive.as_uri(), tmp_path)
    expected = (archive.parent / "devkit" / "categories.txt").read_text()
    assert (tmp_path / "categories.txt").read_text() == expected
    bare = make_miniplaces_archive(
        tmp_path / "bare" / "data.tar.gz", n_classes=2, label_files_in_archive=False
    )
    with pytest.raises(mp.ArchiveError, match="no categories.txt.*devkit_url"):
        mp.download_miniplaces(bare.as_uri(), tmp_path / "bare-dl")


def test_checksum_mismatch_names_both_digests_and_removes_the_file(archive, tmp_path):
    wrong = "0" * 64
    with pytest.raises(dl.ChecksumError) as error:
        mp.download_miniplaces(archive.as_uri(), tmp_path, sha256=wrong)
    message = str(error.value)
    assert wrong in message and dl.sha256_of(archive) in message
    assert "pin the new digest" in message
    assert list(tmp_path.iterdir()) == []


def test_truncated_archive_fails_clearly_at_download_and_unzip(archive, tmp_path):
    broken = tmp_path / "broken" / "data.tar.gz"
    broken.parent.mkdir()
    broken.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(mp.ArchiveError, match="truncated or corrupt"):
        mp.download_miniplaces(broken.as_uri(), tmp_path / "dl")
    assert not (tmp_path / "dl" / "data.tar.gz").exists()
    with pytest.raises(mp.ArchiveError, match="truncated or corrupt.*delete it"):
        mp.unzip_miniplaces(broken, tmp_path / "extracted" / "images")
    assert not (tmp_path / "extracted" / "images").exists()
    assert not list((tmp_path / "extracted").glob("*"))


def _bit_flipped(archive: Path, dest: Path) -> Path:
    """A copy of `archive` with one bit flipped in the middle of its deflate data."""
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x10
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(bytes(data))
    return dest


def test_bit_flipped_archive_fails_clearly_at_download_and_unzip(archive, tmp_path):
    broken = _bit_flipped(archive, tmp_path / "broken" / "data.tar.gz")
    with pytest.raises(
        mp.ArchiveError, match=r"dl/data.tar.gz is truncated or corrupt.*removed"
    ):
        mp.download_miniplaces(broken.as_uri(), tmp_path / "dl")
    assert not (tmp_path / "dl" / "data.tar.gz").exists()
    with pytest.raises(mp.ArchiveError, match="truncated or corrupt.*delete it"):
        mp.unzip_miniplaces(broken, tmp_path / "extracted" / "images")
    assert not list((tmp_path / "extracted").glob("*"))


def test_md5_is_checked_after_download(archive, tmp_path):
    md5 = dl.digests_of(archive, "md5")["md5"]
    mp.download_miniplaces(archive.as_uri(), tmp_path / "ok", md5=md5.upper())
    wrong = "0" * 32
    with pytest.raises(dl.ChecksumError, match=f"expected md5 {wrong}, got {md5}"):
        mp.download_miniplaces(archive.as_uri(), tmp_path / "bad", md5=wrong)
    assert list((tmp_path / "bad").iterdir()) == []


def test_download_resumes_a_partial_file(archive, tmp_path):
    data = archive.read_bytes()
    (tmp_path / "data.tar.gz.part").write_bytes(data[:1000])
    digest = dl.download_file(archive.as_uri(), tmp_path / "data.tar.gz")
    assert digest == dl.sha256_of(archive)
    assert (tmp_path / "data.tar.gz").read_bytes() == data


def test_download_retries_transient_errors(archive, tmp_path, monkeypatch):
    calls = []
    real_open = dl._open

    def flaky(url, offset, timeout):
        calls.append(offset)
        if len(calls) == 1:
            raise urllib.error.URLError("temporary failure")
        return real_open(url, offset, timeout)

    monkeypatch.setattr(dl, "_open", flaky)
    dl.download_file(archive.as_uri(), tmp_path / "a", retries=2, backoff=0)
    assert len(calls) == 2
    assert (tmp_path / "a").read_bytes() == archive.read_bytes()
    with pytest.raises(RuntimeError, match="failed after 1 attempt"):
        dl.download_file((tmp_path / "missing").as_uri(), tmp_path / "b", backoff=0)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one payload, honouring Range; the first full request is cut short."""

    payload = b""
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        header = self.headers.get("Range")
        type(self).requests.append(header or "")
        start = int(header.split("=")[1].rstrip("-")) if header else 0
        body = self.payload[start:]
        self.send_response(206 if header else 200)
        if header:
            total = len(self.payload)
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if len(type(self).requests) == 1:
            body = body[: len(body) // 3]
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_download_resumes_with_range_after_a_cut(archive, tmp_path):
    _RangeHandler.payload = archive.read_bytes()
    _RangeHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/data.tar.gz"
        digest = dl.download_file(url, tmp_path / "data.tar.gz", backoff=0, timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert digest == dl.sha256_of(archive)
    assert _RangeHandler.requests[0] == ""
    assert _RangeHandler.requests[1] == f"bytes={len(_RangeHandler.payload) // 3}-"


@pytest.fixture
def extracted(archive, tmp_path):
    mp.download_miniplaces(archive.as_uri(), tmp_path / "dl")
    images = mp.unzip_miniplaces(tmp_path / "dl" / "data.tar.gz", tmp_path / "images")
    return images, tmp_path / "dl"


def test_corrupt_val_image_fails_naming_it_or_is_skipped(extracted, tmp_path):
    images, labels = extracted
    (images / "val" / "00000002.jpg").write_bytes(b"\xff\xd8 broken")
    args = (images, labels / "categories.txt", labels / "val.txt", tmp_path / "out")
    with pytest.raises(CorruptImageError, match="val/00000002.jpg"):
        mp.prepare_miniplaces(*args)
    assert mp.prepare_miniplaces(*args, on_corrupt="skip") == {"val": 11, "test": 12}


def test_val_labels_outside_the_categories_are_rejected(extracted, tmp_path):
    images, labels = extracted
    (tmp_path / "val.txt").write_text("val/00000001.jpg 7\n")
    with pytest.raises(ValueError, match="label 7 is outside 0..3"):
        mp.prepare_miniplaces(
            images, labels / "categories.txt", tmp_path / "val.txt", tmp_path / "out"
        )


def _predictions(path, ids, top5):
    table = pa.table({"sample_id": ids, "label": [-1] * len(ids), "top5": top5})
    pq.write_table(table, path)
    return path


def test_submission_has_the_official_top5_and_leaderboard_formats(tmp_path):
    ids = ["test/00000002.jpg", "test/00000001.jpg", "test/00000010.jpg"]
    top5 = [[5, 4, 3, 2, 1], [81, 90, 12, 91, 63], [0, 1, 2, 3, 4]]
    predictions = _predictions(tmp_path / "p.parquet", ids, top5)
    count = mp.write_submission(predictions, tmp_path / "top5.txt", tmp_path / "lb.csv")
    assert count == 3
    assert (tmp_path / "top5.txt").read_text() == (
        "test/00000001.jpg 81 90 12 91 63\n"
        "test/00000002.jpg 5 4 3 2 1\n"
        "test/00000010.jpg 0 1 2 3 4\n"
    )
    assert (tmp_path / "lb.csv").read_text() == (
        "Id,Category\n00000001,81\n00000002,5\n00000010,0\n"
    )
    mp.write_submission(
        predictions, tmp_path / "t.txt", tmp_path / "c.csv", "id", "label"
    )
    assert (tmp_path / "c.csv").read_text().startswith("id,label\n00000001,81\n")


def test_submission_rejects_bad_predictions(tmp_path):
    cases = [
        (["val/00000001.jpg"], [[1, 2, 3, 4, 5]], "not a Miniplaces test image"),
        (["test/00000001.jpg"], [[1, 2, 3]], "has 3 predicted labels"),
        (["test/00000001.jpg"] * 2, [[1, 2, 3, 4, 5]] * 2, "appears twice"),
    ]
    for ids, top5, message in cases:
        predictions = _predictions(tmp_path / "p.parquet", ids, top5)
        with pytest.raises(ValueError, match=message):
            mp.write_submission(predictions, tmp_path / "t.txt", tmp_path / "c.csv")
        assert not (tmp_path / "t.txt").exists()


def test_submission_checks_labels_and_test_images_against_the_split(tmp_path):
    ids = [f"test/{i:08d}.jpg" for i in range(1, 4)]
    test = _predictions(tmp_path / "test.parquet", ids, [[0] * 5] * 3)
    classes = tmp_path / "classes.json"
    write_classes(classes, ["/a/abbey", "/b/bar"], ["abbey", "bar"])
    checks = {"test_parquet": test, "classes_json": classes}
    out = (tmp_path / "t.txt", tmp_path / "c.csv")
    cases = [
        (ids, [[0, 1, 0, 1, 0]] * 3, None),
        (ids, [[0, 1, 0, 1, 2]] * 3, r"labels \[2\] outside 0..1"),
        (ids[:2], [[0, 1, 0, 1, 0]] * 2, "1 test images have no prediction.*00003"),
    ]
    for sample_ids, top5, message in cases:
        predictions = _predictions(tmp_path / "p.parquet", sample_ids, top5)
        if message is None:
            assert mp.write_submission(predictions, *out, **checks) == 3
            continue
        out[0].unlink(missing_ok=True)
        with pytest.raises(ValueError, match=message):
            mp.write_submission(predictions, *out, **checks)
        assert not out[0].exists()


def test_unsafe_archive_members_are_refused(tmp_path):
    hostile = tmp_path / "data.tar.gz"
    with tarfile.open(hostile, "w:gz") as archive:
        for name in ("images/val/00000001.jpg", "images/../../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(mp.ArchiveError, match="unsafe member"):
        mp.unzip_miniplaces(hostile, tmp_path / "out" / "images")
    assert not (tmp_path / "escaped.txt").exists()
    assert not list((tmp_path / "out").glob("*"))
