"""TFDS datasets: run the real builder, then export a split without TensorFlow.

`download_and_prepare` runs a TFDS builder's own download and preparation code.
With `local_source` (an offline mirror folder) every file the builder asks its
download manager for is taken from that folder instead of the network: a URL
maps to the entry named by the folder's optional `urls.json` ({url: relative
path}) or else to the URL's last path component. An entry that is a folder
stands for the extracted archive; a file is extracted by TFDS as if downloaded.
TFDS checksums are not checked for mirrored files.

`export_split` and `export_classes` read the prepared ArrayRecord data through
`as_data_source`, which needs no TensorFlow, and write the prepared format.
"""

import difflib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from clipstudy.data import write_classes, write_samples
from clipstudy.datasets.common import (
    check_names,
    check_on_corrupt,
    checked_samples,
    readable,
    shipped_classnames,
)

log = logging.getLogger(__name__)

FILE_FORMAT = "array_record"
ID_FEATURES = ("image/filename", "filename", "file_name")
URL_INDEX = "urls.json"


def check_builder_name(name: str) -> None:
    """Raise ValueError naming close matches if TFDS has no builder `name`."""
    import tensorflow_datasets as tfds

    known = tfds.list_builders(with_community_datasets=False)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(
            f"TFDS has no dataset {name!r}{hint}; fix datasets.<id>.name in the "
            "config (see tfds.list_builders())"
        )


def _builder(name: str, data_dir: str | os.PathLike | None, config: str | None):
    import tensorflow_datasets as tfds

    check_builder_name(name)
    kwargs = {"data_dir": os.fspath(data_dir) if data_dir else None}
    if config:
        kwargs["config"] = config
    try:
        return tfds.builder(name, file_format=FILE_FORMAT, **kwargs)
    except ValueError as error:
        raise ValueError(
            f"cannot build TFDS dataset {name!r} with config {config!r}: {error}"
        ) from error


class LocalSource:
    """Answers a TFDS download manager's calls from a local mirror folder."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(
                f"local TFDS source {self.folder} is not a folder; give the folder "
                "that holds the files the builder downloads"
            )
        index = self.folder / URL_INDEX
        self.index = json.loads(index.read_text()) if index.is_file() else {}

    def resolve(self, url: str) -> Path:
        """The mirrored file or folder for `url`; raise naming where it belongs."""
        name = self.index.get(url) or unquote(Path(urlparse(url).path).name)
        path = self.folder / name
        if not path.exists():
            raise FileNotFoundError(
                f"local TFDS source has no file for {url}: put it at {path} (a "
                "file, or a folder holding its extracted contents) or map the URL "
                f"in {self.folder / URL_INDEX}"
            )
        log.info("TFDS download %s -> local %s", url, path)
        return path

    def install(self, manager) -> None:
        """Redirect `manager`'s download, extract and download_and_extract calls."""
        import tensorflow_datasets as tfds
        from etils import epath

        extract = manager.extract

        def download_one(resource):
            is_resource = isinstance(resource, tfds.download.Resource)
            url = resource.url if is_resource else resource
            return epath.Path(self.resolve(str(url)))

        def extract_one(resource):
            is_resource = isinstance(resource, tfds.download.Resource)
            path = resource.path if is_resource else resource
            if Path(os.fspath(path)).is_dir():
                return epath.Path(path)
            return extract(resource)

        def download_and_extract_one(resource):
            path = download_one(resource)
            if isinstance(resource, tfds.download.Resource) and not path.is_dir():
                method = resource.extract_method
                return extract_one(
                    tfds.download.Resource(path=path, extract_method=method)
                )
            return extract_one(path)

        manager.download = lambda tree: _map_tree(download_one, tree)
        manager.extract = lambda tree: _map_tree(extract_one, tree)
        manager.download_and_extract = lambda tree: _map_tree(
            download_and_extract_one, tree
        )


def _map_tree(function, tree):
    if isinstance(tree, dict):
        return {key: _map_tree(function, value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map_tree(function, value) for value in tree)
    return function(tree)


def download_and_prepare(
    name: str,
    data_dir: str | os.PathLike | None = None,
    local_source: str | os.PathLike | None = None,
    config: str | None = None,
) -> dict:
    """Download and prepare TFDS dataset `name`; return a record of what is there.

    The record (name, config, version, builder_dir, splits with their sizes,
    label names) is what `export_split` and the download rule's output keep.
    """
    builder = _builder(name, data_dir, config)
    if local_source is not None:
        source = LocalSource(local_source)
        make_manager = builder._make_download_manager

        def make_local_manager(*args, **kwargs):
            manager = make_manager(*args, **kwargs)
            source.install(manager)
            return manager

        builder._make_download_manager = make_local_manager
    start = time.perf_counter()
    builder.download_and_prepare()
    record = dataset_record(builder)
    log.info(
        "prepared TFDS %s %s in %.1f s: %s",
        builder.info.full_name,
        "from " + os.fspath(local_source) if local_source else "from the network",
        time.perf_counter() - start,
        ", ".join(f"{split} {n:,}" for split, n in record["splits"].items()),
    )
    return record


def dataset_record(builder) -> dict:
    """Name, config, version, folder, split sizes and label names of a builder."""
    label = builder.info.features["label"]
    return {
        "name": builder.name,
        "config": builder.builder_config.name if builder.builder_config else None,
        "version": str(builder.version),
        "builder_dir": os.fspath(builder.data_dir),
        "splits": {
            str(s): info.num_examples for s, info in builder.info.splits.items()
        },
        "label_names": list(label.names),
    }


def _prepared_builder(name: str, data_dir, config: str | None):
    import tensorflow_datasets as tfds

    builder_dir = Path(os.fspath(_builder(name, data_dir, config).data_dir))
    if not (builder_dir / "dataset_info.json").is_file():
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared in {builder_dir}; run "
            "download_and_prepare (the download_tfds rule) first"
        )
    return tfds.builder_from_directory(os.fspath(builder_dir))


def _examples(builder, split: str) -> Iterator[dict]:
    """Examples of `split` with the image left encoded, without TF when possible."""
    import tensorflow_datasets as tfds

    decoders = {"image": tfds.decode.SkipDecoding()}
    try:
        source = builder.as_data_source(split, decoders=decoders)
    except NotImplementedError:
        # workaround: data prepared as TFRecord (e.g. by another tool) needs TF
        log.info("%s is not ArrayRecord; reading it with TensorFlow", builder.name)
        dataset = builder.as_dataset(split, decoders=decoders, shuffle_files=False)
        yield from tfds.as_numpy(dataset)
        return
    for index in range(len(source)):
        yield source[index]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def export_split(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    config: str | None = None,
    on_corrupt: str = "fail",
) -> int:
    """Write `{out_dir}/{split}.parquet` from a prepared TFDS split; return rows.

    Sample ids are the example's file name where the dataset has one (made
    unique with the example index if needed), else the zero-padded index.
    """
    check_on_corrupt(on_corrupt)
    builder = _prepared_builder(name, data_dir, config)
    if split not in builder.info.splits:
        raise ValueError(
            f"TFDS dataset {name!r} has no split {split!r}; its splits are "
            f"{', '.join(builder.info.splits)}; fix datasets.<id>.split"
        )
    features = builder.info.features
    id_feature = next((key for key in ID_FEATURES if key in features), None)
    label_names: dict[int, str] = {}
    raw = shipped_classnames("tfds").get(name, {}).get("raw")

    def samples():
        seen = set()
        for index, example in enumerate(_examples(builder, split)):
            label = int(example["label"])
            if "label_name" in example:
                label_name = _text(example["label_name"])
                _check_label_name(name, index, label, label_name, raw, label_names)
            sample_id = f"{index:07d}"
            if id_feature:
                sample_id = _text(example[id_feature])
                if sample_id in seen:
                    sample_id = f"{sample_id}#{index}"
            seen.add(sample_id)
            yield sample_id, label, bytes(example["image"])

    where = f"TFDS {name} {split}"
    counts: dict = {}
    start = time.perf_counter()
    written = write_samples(
        Path(out_dir) / f"{split}.parquet",
        checked_samples(samples(), on_corrupt, where, counts),
    )
    log.info(
        "exported %s images of %s in %.1f s (%d corrupt skipped)",
        f"{written:,}",
        where,
        time.perf_counter() - start,
        counts.get("skipped", 0),
    )
    return written


def _check_label_name(
    name: str,
    index: int,
    label: int,
    label_name: str,
    raw: list[str] | None,
    seen: dict[int, str],
) -> None:
    """Raise if an example's label_name disagrees with the shipped or earlier name."""
    expected, source = seen.setdefault(label, label_name), "earlier examples"
    if raw is not None:
        expected = raw[label] if label < len(raw) else None
        source = "clipstudy/classnames/tfds.json"
    if label_name != expected:
        raise ValueError(
            f"example {index} of TFDS {name} has label {label} named "
            f"{label_name!r}, but {source} name it {expected!r}; fix the shipped "
            "class names, or delete the prepared dataset and prepare it again"
        )


def _numeric_placeholders(names: list[str]) -> bool:
    return names == [str(i) for i in range(len(names))]


def class_names(
    name: str,
    label_names: list[str],
    config: str | None = None,
    curated: list[str] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """Raw, curated and study class names of a TFDS dataset, one per label.

    Shipped names (`clipstudy/classnames/tfds.json`) are used where known; they
    must agree with TFDS's own label names unless those are mere numbers.
    """
    count = len(label_names)
    shipped = shipped_classnames("tfds").get(name)
    if shipped and shipped.get("config") not in (None, config):
        shipped = None
    fix = "fix clipstudy/classnames/tfds.json"
    if shipped:
        raw = check_names(shipped["raw"], count, f"TFDS {name}", fix)
        if not _numeric_placeholders(label_names) and raw != list(label_names):
            diff = next(i for i, (a, b) in enumerate(zip(raw, label_names)) if a != b)
            raise ValueError(
                f"TFDS label names of {name} differ from the shipped ones at index "
                f"{diff} ({label_names[diff]!r} vs {raw[diff]!r}); {fix}"
            )
        default = shipped["curated"]
        study = check_names(shipped.get("study", raw), count, f"TFDS {name}", fix)
    else:
        raw = list(label_names)
        default = [readable(n) for n in raw]
        study = raw
    if curated is None:
        curated = check_names(default, count, f"TFDS {name}", fix)
    else:
        curated = check_names(
            curated,
            count,
            f"TFDS {name}",
            "give one curated name per label in datasets.<id>.curated",
        )
    return raw, curated, study


def export_classes(
    name: str,
    data_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    config: str | None = None,
    curated: list[str] | None = None,
) -> Path:
    """Write `{out_dir}/classes.json` with raw TFDS names and curated names."""
    code_builder = _builder(name, data_dir, config)
    config_name = (
        code_builder.builder_config.name if code_builder.builder_config else None
    )
    builder = _prepared_builder(name, data_dir, config)
    label_names = list(builder.info.features["label"].names)
    raw, curated, study = class_names(name, label_names, config_name, curated)
    path = Path(out_dir) / "classes.json"
    write_classes(path, raw, curated, templates=None, study=study)
    log.info("wrote %d class names of TFDS %s to %s", len(raw), name, path)
    return path
