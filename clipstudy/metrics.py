"""Zero-shot classification metrics, defined as CLIP_benchmark defines them."""

import numpy as np


def topk_hits(top: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Whether each label is among the first k predicted classes (rows of `top`)."""
    return (top[:, :k] == labels[:, None]).any(axis=1)


def per_class_recall(
    predicted: np.ndarray, labels: np.ndarray, n_classes: int
) -> np.ndarray:
    """Recall of each class; NaN for classes without samples."""
    totals = np.bincount(labels, minlength=n_classes).astype(float)
    correct = np.bincount(labels[predicted == labels], minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, correct / totals, np.nan)


def mean_per_class_recall(
    predicted: np.ndarray, labels: np.ndarray, n_classes: int
) -> float:
    """Balanced accuracy without chance adjustment, over classes present in labels."""
    return float(np.nanmean(per_class_recall(predicted, labels, n_classes)))


def bootstrap_intervals(
    top1: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    chunk: int = 50,
) -> dict[str, float]:
    """Percentile bootstrap intervals of top-1 and mean per-class recall."""
    if samples == 0 or len(labels) == 0:
        return {}
    rng = np.random.default_rng(seed)
    n = len(labels)
    correct = top1 == labels
    acc1, recall = [], []
    for start in range(0, samples, chunk):
        rows = min(chunk, samples - start)
        index = rng.integers(0, n, size=(rows, n))
        hits = correct[index]
        acc1.append(hits.mean(axis=1))
        flat = labels[index] + n_classes * np.arange(rows)[:, None]
        size = rows * n_classes
        totals = np.bincount(flat.ravel(), minlength=size).reshape(rows, n_classes)
        right = np.bincount(flat[hits], minlength=size).reshape(rows, n_classes)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall.append(np.nanmean(np.where(totals > 0, right / totals, np.nan), 1))
    tail = (1 - confidence) / 2 * 100
    bounds = {}
    for name, values in (("acc1", acc1), ("mean_per_class_recall", recall)):
        low, high = np.percentile(np.concatenate(values), [tail, 100 - tail])
        bounds[f"{name}_low"], bounds[f"{name}_high"] = float(low), float(high)
    return bounds


def zeroshot_metrics(top: np.ndarray, labels: np.ndarray, n_classes: int) -> dict:
    """Top-1, top-5, mean per-class recall, acc1 - 1/N and per-class recall.

    `top` holds each sample's best class indices, best first; top-5 is undefined
    (None) with fewer than 5 classes, as in CLIP_benchmark.
    """
    if len(labels) == 0:
        raise ValueError("no labelled samples to score; check the dataset's split")
    acc1 = float(topk_hits(top, labels, 1).mean())
    acc5 = float(topk_hits(top, labels, 5).mean()) if n_classes >= 5 else None
    recall = per_class_recall(top[:, 0], labels, n_classes)
    return {
        "acc1": acc1,
        "acc5": acc5,
        "mean_per_class_recall": float(np.nanmean(recall)),
        "acc1_adjusted": acc1 - 1 / n_classes,
        "per_class_recall": [None if np.isnan(r) else float(r) for r in recall],
    }
