"""Draw the study's figures (matplotlib Agg, seaborn) and save each as PNG and SVG."""

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from clipstudy.data import atomic_path  # noqa: E402
from clipstudy.report.settings import FIGURE_NAMES  # noqa: E402
from clipstudy.report.tables import (  # noqa: E402
    Table,
    build_tables,
    read_zeroshot,
)

log = logging.getLogger(__name__)

STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "clipstudy",
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


def palette(labels: Sequence[str]) -> dict[str, tuple]:
    """One distinct colour per checkpoint label, stable for a given sorted list."""
    base = sns.color_palette("tab20", 20)
    colours = base[0::2] + base[1::2]
    return {label: colours[i % len(colours)] for i, label in enumerate(labels)}


def placeholder(title: str, note: str) -> plt.Figure:
    """A small figure that says why there is nothing to plot."""
    fig, ax = plt.subplots(figsize=(6, 1.6))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.45, note, ha="center", va="center", wrap=True, color="0.35")
    return fig


def _long(table: Table, value: str) -> pd.DataFrame:
    frame = table.values.rename_axis(index="dataset", columns="checkpoint")
    return frame.stack().rename(value).reset_index()


def _legend_outside(ax: plt.Axes) -> None:
    """Legend right of the axes, where long rotated tick labels cannot reach it."""
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), title=None)


def grouped_bars(
    data: pd.DataFrame,
    x: str,
    y: str,
    hue: str,
    title: str,
    ylabel: str,
    order: Sequence[str] | None = None,
) -> plt.Figure:
    """Bars of `y` per `x`, one bar per `hue` level; a zero line when values go
    negative."""
    order = list(order) if order is not None else sorted(data[x].unique())
    hues = sorted(data[hue].unique())
    width = min(26.0, 3.0 + len(order) * (0.08 * len(hues) + 0.25))
    fig, ax = plt.subplots(figsize=(max(width, 6.0), 4.6))
    sns.barplot(
        data=data,
        x=x,
        y=y,
        hue=hue,
        order=order,
        hue_order=hues,
        palette=palette(hues),
        errorbar=None,
        ax=ax,
    )
    if (data[y] < 0).any():
        ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set(title=title, xlabel=None, ylabel=ylabel)
    ax.tick_params(axis="x", labelrotation=60)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    _legend_outside(ax)
    return fig


def figure_benchmark_top1(tables: Mapping[str, Table]) -> plt.Figure:
    """Top-1 per CLIP_benchmark dataset and checkpoint (the study's first figure)."""
    table = tables["table1_acc1"]
    title = "Top-1 accuracy per dataset and checkpoint"
    if table.empty:
        return placeholder(title, "No CLIP_benchmark datasets in this run.")
    return grouped_bars(
        _long(table, "acc1"), "dataset", "acc1", "checkpoint", title, "top-1 accuracy"
    )


def figure_benchmark_top1_mean(tables: Mapping[str, Table]) -> plt.Figure:
    """Top-1 per dataset averaged over checkpoints, best first; dots are
    checkpoints."""
    table = tables["table1_acc1"]
    title = "Top-1 accuracy averaged over checkpoints"
    if table.empty:
        return placeholder(title, "No CLIP_benchmark datasets in this run.")
    data = _long(table, "acc1")
    order = data.groupby("dataset")["acc1"].mean().sort_values(ascending=False).index
    fig, ax = plt.subplots(figsize=(max(6.0, 2.5 + 0.3 * len(order)), 4.2))
    sns.barplot(
        data=data,
        x="dataset",
        y="acc1",
        order=order,
        color="#8fb3d9",
        errorbar=None,
        ax=ax,
    )
    sns.stripplot(
        data=data, x="dataset", y="acc1", order=order, color="0.25", size=2.5, ax=ax
    )
    ax.set(title=title, xlabel=None, ylabel="mean top-1 accuracy")
    ax.tick_params(axis="x", labelrotation=60)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    return fig


def figure_robustness(tables: Mapping[str, Table]) -> plt.Figure:
    """Effective robustness: mean shifted top-1 vs reference top-1, linear fit."""
    table = tables["robustness"]
    frame, fit = table.values, table.extra.get("fit")
    title = "Effective robustness"
    if frame.empty:
        shifts = ", ".join(table.extra.get("shifts", []))
        return placeholder(
            title, f"Needs the reference and every shift ({shifts}) per checkpoint."
        )
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    reference = table.extra.get("published", pd.DataFrame())
    if not reference.empty:
        ax.scatter(
            reference["reference"],
            reference["shifted_mean"],
            facecolors="none",
            edgecolors="0.6",
            label="published (CLIP_benchmark)",
        )
    colours = palette(list(frame.index))
    for label, row in frame.iterrows():
        ax.scatter(
            row["reference"], row["shifted_mean"], color=colours[label], zorder=3
        )
        ax.annotate(
            label,
            (row["reference"], row["shifted_mean"]),
            textcoords="offset points",
            xytext=(4, 3),
            fontsize=7,
        )
    if fit is not None:
        xs = np.linspace(frame["reference"].min(), frame["reference"].max(), 50)
        ax.plot(xs, fit[0] * xs + fit[1], color="0.3", linestyle="--", label="fit")
    ax.set(
        title=title,
        xlabel=f"top-1 on {table.extra.get('reference', 'reference')}",
        ylabel="mean top-1 over distribution shifts",
    )
    ax.legend(loc="upper left")
    return fig


def figure_tfds_acc1_adjusted(
    tables: Mapping[str, Table], groups: Sequence[str]
) -> plt.Figure:
    """acc1_adjusted per TFDS dataset and checkpoint, datasets ordered by task
    group."""
    table = tables["table3_acc1_adjusted"]
    title = "Top-1 minus chance (acc1_adjusted) per TFDS dataset"
    if table.empty:
        return placeholder(title, "No TFDS datasets in this run.")
    data = _long(table, "acc1_adjusted")
    data["group"] = data["dataset"].map(table.extra["groups"])
    rank = {group: i for i, group in enumerate(groups)}
    order = sorted(
        data["dataset"].unique(),
        key=lambda d: (rank.get(_group(data, d), len(rank)), d),
    )
    fig = grouped_bars(
        data,
        "dataset",
        "acc1_adjusted",
        "checkpoint",
        title,
        "acc1 - 1/N",
        order=order,
    )
    ax = fig.axes[0]
    labels = [f"{d.removeprefix('tfds/')} ({_group(data, d)})" for d in order]
    ax.set_xticks(range(len(order)), labels)
    return fig


def _group(data: pd.DataFrame, dataset: str) -> str:
    return str(data.loc[data["dataset"] == dataset, "group"].iloc[0])


def figure_tfds_task_groups(tables: Mapping[str, Table]) -> plt.Figure:
    """acc1_adjusted averaged over the datasets of each task group, per
    checkpoint."""
    table = tables["task_groups"]
    title = "Top-1 minus chance averaged by task group"
    if table.empty:
        return placeholder(title, "No TFDS datasets in this run.")
    data = _long(table, "acc1_adjusted").rename(columns={"dataset": "group"})
    return grouped_bars(
        data,
        "group",
        "acc1_adjusted",
        "checkpoint",
        title,
        "mean acc1 - 1/N",
        order=list(table.values.index),
    )


def figure_class_names(zeroshot: pd.DataFrame, settings: Mapping) -> plt.Figure:
    """Raw vs curated class names per dataset: mean over checkpoints, range as
    whiskers."""
    raw, curated = settings["class_names"]["raw"], settings["class_names"]["curated"]
    title = "Raw vs curated class names"
    rows = zeroshot[zeroshot["prompts"].isin([raw, curated])]
    both = rows.groupby(["row_label", "checkpoint"])["prompts"].transform("nunique")
    rows = rows[both == 2]
    if rows.empty:
        return placeholder(
            title, f"No dataset was evaluated with both {raw!r} and {curated!r}."
        )
    data = rows.assign(
        names=rows["prompts"].map(
            {raw: f"raw ({raw})", curated: f"curated ({curated})"}
        )
    )
    order = sorted(data["row_label"].unique())
    fig, ax = plt.subplots(figsize=(max(6.0, 2.5 + 0.7 * len(order)), 4.4))
    sns.barplot(
        data=data,
        x="row_label",
        y="acc1_adjusted",
        hue="names",
        order=order,
        hue_order=[f"raw ({raw})", f"curated ({curated})"],
        palette=["#c98b8b", "#6a9fcf"],
        errorbar=("pi", 100),
        err_kws={"linewidth": 1},
        capsize=0.15,
        ax=ax,
    )
    if (data["acc1_adjusted"] < 0).any():
        ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set(title=title, xlabel=None, ylabel="acc1 - 1/N (mean, min-max)")
    ax.tick_params(axis="x", labelrotation=45)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    _legend_outside(ax)
    return fig


def figure_published_comparison(tables: Mapping[str, Table]) -> plt.Figure:
    """Reproduced vs published (left) and their difference (right) for every cell.

    Cells beyond the tolerance are ringed; the grey band is +/- the tolerance.
    """
    table = tables["published_comparison"]
    frame, tolerance = table.values, table.extra.get("tolerance", 0.0)
    title = "Reproduced vs published"
    if frame.empty:
        return placeholder(title, "No reproduced cell has a published counterpart.")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.8))
    low = float(min(frame["published"].min(), frame["reproduced"].min(), 0))
    high = float(max(frame["published"].max(), frame["reproduced"].max(), 1))
    line = np.array([low, high])
    hues = sorted(frame["table"].unique())
    colours = dict(zip(hues, sns.color_palette("tab10", len(hues))))
    flagged = frame[frame["flagged"]]
    ring = {"s": 70, "facecolors": "none", "edgecolors": "black", "linewidths": 1.2}
    for ax, y in ((left, "reproduced"), (right, "difference")):
        band = line * 0 if y == "difference" else line
        ax.fill_between(line, band - tolerance, band + tolerance, color="0.88")
        ax.plot(line, band, color="0.3", linewidth=0.8)
        sns.scatterplot(
            data=frame,
            x="published",
            y=y,
            hue="table",
            hue_order=hues,
            palette=colours,
            s=18,
            ax=ax,
            legend=ax is left,
        )
        ax.scatter(flagged["published"], flagged[y], **ring)
        ax.set_xlim(low, high)
    left.scatter([], [], label=f"|difference| > {tolerance:g}", **ring)
    left.set(title=title, ylim=(low, high))
    left.set_aspect("equal")
    left.legend(loc="upper left", fontsize=8)
    right.set(title="Difference (reproduced - published)", ylabel="difference")
    fig.tight_layout()
    return fig


def build_figures(
    zeroshot: pd.DataFrame, settings: Mapping, names: Sequence[str] = FIGURE_NAMES
) -> dict[str, plt.Figure]:
    """Draw the named figures from zeroshot rows (tables are built on the way)."""
    unknown = set(names) - set(FIGURE_NAMES)
    if unknown:
        raise ValueError(
            f"unknown figures {sorted(unknown)}; choose from {', '.join(FIGURE_NAMES)}"
        )
    tables = build_tables(zeroshot, settings)
    draw = {
        "benchmark_top1": lambda: figure_benchmark_top1(tables),
        "benchmark_top1_mean": lambda: figure_benchmark_top1_mean(tables),
        "robustness": lambda: figure_robustness(tables),
        "tfds_acc1_adjusted": lambda: figure_tfds_acc1_adjusted(
            tables, list(settings["task_groups"])
        ),
        "tfds_task_groups": lambda: figure_tfds_task_groups(tables),
        "class_names": lambda: figure_class_names(zeroshot, settings),
        "published_comparison": lambda: figure_published_comparison(tables),
    }
    figures = {}
    with plt.rc_context(STYLE):
        for name in names:
            figures[name] = draw[name]()
    return figures


def save_figure(fig: plt.Figure, paths: Sequence[str | os.PathLike]) -> None:
    """Save `fig` to each path (format from the suffix), atomically, then close it."""
    for path in paths:
        path = Path(path)
        suffix = path.suffix.lstrip(".").lower()
        if suffix not in ("png", "svg"):
            raise ValueError(f"figure {path} must end in .png or .svg")
        metadata = {"Date": None} if suffix == "svg" else {"Software": None}
        with plt.rc_context(STYLE), atomic_path(path) as tmp:
            fig.savefig(
                tmp,
                format=suffix,
                dpi=150,
                bbox_inches="tight",
                metadata=metadata,
            )
        log.info("saved figure %s", path)
    plt.close(fig)


def write_figures(
    zeroshot_csv: str | os.PathLike,
    settings: Mapping,
    outputs: Mapping[str, Sequence[str | os.PathLike]],
) -> None:
    """Draw the figures named by `outputs` (name -> PNG/SVG paths) from
    zeroshot.csv."""
    zeroshot = read_zeroshot(zeroshot_csv)
    for name, fig in build_figures(zeroshot, settings, list(outputs)).items():
        save_figure(fig, outputs[name])
