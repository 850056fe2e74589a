"""The published numbers the study reported, shipped as package data, as DataFrames."""

from importlib import resources

import pandas as pd

CLIP_BENCHMARK_TASK = "zeroshot_classification"
TABLES = {
    "Table 1": ("benchmark", "acc1"),
    "Table 2": ("benchmark", "mean_per_class_recall"),
    "Table 3": ("tfds", "acc1_adjusted"),
    "Table 4": ("tfds", "mean_per_class_recall"),
}
# The split each published table was scored on: CLIP_benchmark's test splits,
# the study's TFDS train splits and the Miniplaces test split (class leaderboard).
PUBLISHED_SPLITS = {
    "Table 1": "test",
    "Table 2": "test",
    "Table 3": "train",
    "Table 4": "train",
    "Miniplaces": "test",
}


def _read(name: str) -> pd.DataFrame:
    with resources.files(__package__).joinpath(name).open("rb") as handle:
        return pd.read_csv(handle)


def clip_benchmark(task: str | None = CLIP_BENCHMARK_TASK) -> pd.DataFrame:
    """CLIP_benchmark's benchmark.csv (Tables 1-2 of the study), one row per task run.

    `task` keeps only that task's rows; None keeps retrieval rows too.
    """
    frame = _read("clip_benchmark_benchmark.csv")
    if task is not None:
        frame = frame[frame["task"] == task].reset_index(drop=True)
    return frame


def clip_benchmark_dataset_types() -> pd.DataFrame:
    """CLIP_benchmark's dataset types: natural, specialized, structured, retrieval."""
    return _read("clip_benchmark_dataset_type.csv")


def study_tfds() -> pd.DataFrame:
    """The study's Tables 3-4: acc1_adjusted and mean per-class recall, 17 TFDS sets."""
    frame = _read("study_tfds_results.csv")
    frame["model_fullname"] = frame["model"] + " " + frame["pretrained"]
    return frame


def study_miniplaces() -> pd.DataFrame:
    """The study's Miniplaces table: test-split top-1 from the class leaderboard."""
    return _read("study_miniplaces_results.csv")


def miniplaces_top1(published_as: str) -> float:
    """The study's Miniplaces top-1 for a checkpoint's published name, else NaN.

    Matched like Tables 1-4, on `published_as` ("<model> <pretrained tag>"). The
    study gave its LAION ViT-L-14 no tag ("laion (tag not stated)"), so a stated
    tag matches every tag that starts with it.
    """
    model, _, tag = str(published_as).strip().partition(" ")
    for row in study_miniplaces().itertuples():
        stated = str(row.pretrained).split(" ")[0]
        if row.model == model and tag.startswith(stated):
            return float(row.value)
    return float("nan")


def published_cells() -> pd.DataFrame:
    """Every published cell of Tables 1-4 in long form.

    Columns: table, dataset (name as published), published_as (model_fullname),
    metric, value. Rows without a value (voc2007_multilabel has no top-1) are left
    out, so Tables 1-2 have 35 datasets x 13 checkpoints as in the study.
    """
    benchmark = clip_benchmark()
    tfds = study_tfds()
    parts = []
    for table, (source, metric) in TABLES.items():
        frame = benchmark if source == "benchmark" else tfds
        part = frame[["dataset", "model_fullname", metric]].rename(
            columns={"model_fullname": "published_as", metric: "value"}
        )
        parts.append(part.assign(table=table, metric=metric))
    cells = pd.concat(parts, ignore_index=True).dropna(subset=["value"])
    columns = ["table", "dataset", "published_as", "metric", "value"]
    return cells[columns].reset_index(drop=True)
