"""Score relevance maps: faithfulness, localisation and consistency.

Faithfulness: deletion and insertion curves of the model's own zero-shot score
as grid cells are removed from (or added to) the input in relevance order.
Localisation: photos pasted at known boxes onto a background (pointing game and
relevance mass in the box). Consistency: how much a map moves when the prompt
changes, and how much checkpoints agree on the same image and prompt.
"""

import itertools
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

from clipstudy.data import atomic_path
from clipstudy.relevance import check_prompts, relevance_map, to_photo
from clipstudy.relevance_render import load_map, read_manifest

log = logging.getLogger(__name__)

BASELINES = ("blur", "mean")
KEYS = ["experiment", "checkpoint", "image", "prompt"]
CONSISTENCY = [
    "prompt_sensitivity",
    "prompt_sensitivity_cosine",
    "checkpoint_agreement",
    "checkpoint_agreement_cosine",
]


# deletion and insertion


def cell_index(input_size: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """(H, W) map from each input pixel to the grid cell (row-major) it lies in."""
    rows = np.minimum(np.arange(input_size[0]) * grid[0] // input_size[0], grid[0] - 1)
    cols = np.minimum(np.arange(input_size[1]) * grid[1] // input_size[1], grid[1] - 1)
    return rows[:, None] * grid[1] + cols[None, :]


def baseline_image(image: torch.Tensor, kind: str = "blur") -> torch.Tensor:
    """What removed cells show: a strong blur of the input, or the dataset mean."""
    if kind == "mean":
        return torch.zeros_like(image)
    if kind == "blur":
        sigma = max(image.shape[-2:]) / 16
        kernel = int(2 * round(3 * sigma) + 1)
        return gaussian_blur(image, [kernel, kernel], [sigma, sigma])
    raise ValueError(f"unknown baseline {kind!r}; choose one of {BASELINES}")


@dataclass
class Curves:
    """Deletion and insertion curves of one map (probability and logit)."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_logit: np.ndarray
    insertion_logit: np.ndarray

    def areas(self, suffix: str = "", logit: bool = True) -> dict[str, float]:
        """Areas under the curves (trapezoid rule over the removed fraction)."""
        auc = {"deletion_auc": self.deletion, "insertion_auc": self.insertion}
        if logit:
            auc["deletion_auc_logit"] = self.deletion_logit
            auc["insertion_auc_logit"] = self.insertion_logit
        return {
            f"{key}{suffix}": float(np.trapezoid(curve, self.fractions))
            for key, curve in auc.items()
        }


@torch.no_grad()
def perturbation_curves(
    model,
    image: torch.Tensor,
    text_features: torch.Tensor,
    target: int,
    order: np.ndarray,
    grid: tuple[int, int],
    steps: int = 16,
    baseline: str = "blur",
) -> Curves:
    """Zero-shot score of `target` as cells are deleted / inserted in `order`.

    `image` is one preprocessed input (1, 3, H, W); `text_features` are the
    L2-normalised features of the prompts the zero-shot classifier chooses
    among; `order` lists cell indices, most relevant first. The probability is
    the softmax over those prompts; the logit is the scaled cosine similarity.
    """
    cells = torch.as_tensor(cell_index(tuple(image.shape[-2:]), grid))
    rank = torch.empty(len(order), dtype=torch.long)
    rank[torch.as_tensor(order)] = torch.arange(len(order))
    rank_map = rank[cells].to(image.device)
    fractions = np.linspace(0, 1, steps + 1)
    counts = np.round(fractions * len(order)).astype(int)
    masks = torch.stack([rank_map < k for k in counts])[:, None]  # (S, 1, H, W)
    background = baseline_image(image, baseline)
    deleted = torch.where(masks, background, image)
    inserted = torch.where(masks, image, background)
    logits = []
    for batch in torch.cat([deleted, inserted]).split(32):
        features = F.normalize(model.encode_image(batch), dim=-1)
        logits.append(model.logit_scale.exp() * features @ text_features.T)
    logits = torch.cat(logits).float().cpu()
    probs = logits.softmax(dim=-1)[:, target].numpy()
    logit = logits[:, target].numpy()
    n = len(fractions)
    return Curves(fractions, probs[:n], probs[n:], logit[:n], logit[n:])


def score_maps(
    model,
    preprocess,
    tokenizer,
    photo: Image.Image,
    map_dir: str | os.PathLike,
    steps: int = 16,
    baseline: str = "blur",
    seed: int = 0,
) -> pd.DataFrame:
    """Deletion / insertion areas of every map in a folder, plus a random order.

    The zero-shot classifier chooses among the folder's prompts; the random
    order (seeded) gives the areas a map should beat.
    """
    started = time.perf_counter()
    manifest = read_manifest(map_dir)
    maps = [load_map(entry["npz"]) for entry in manifest["maps"]]
    prompts = [m["prompt"] for m in maps]
    device = next(model.parameters()).device
    image = preprocess(photo.convert("RGB")).unsqueeze(0).to(device)
    with torch.no_grad():
        text = F.normalize(model.encode_text(tokenizer(prompts).to(device)), dim=-1)
        clean = model.logit_scale.exp() * F.normalize(model.encode_image(image), dim=-1)
        clean = (clean @ text.T).float().cpu()[0]
    rng = np.random.default_rng(seed)
    rows = []
    for target, data in enumerate(maps):
        grid = tuple(int(g) for g in data["grid"])
        values = data["image_relevance"].ravel()
        order = np.argsort(-values, kind="stable")
        curves = perturbation_curves(
            model, image, text, target, order, grid, steps, baseline
        )
        shuffled = rng.permutation(len(values))
        random = perturbation_curves(
            model, image, text, target, shuffled, grid, steps, baseline
        )
        rows.append(
            {
                "experiment": manifest.get("experiment", ""),
                "checkpoint": manifest.get("checkpoint", ""),
                "image": manifest.get("image", ""),
                "prompt": data["prompt"],
                "method": data["method"],
                "start_layer": data["start_layer"],
                "grid": "x".join(map(str, grid)),
                "logit": float(clean[target]),
                "probability": float(clean.softmax(0)[target]),
                **curves.areas(),
                **random.areas("_random", logit=False),
                "steps": steps,
                "baseline": baseline,
            }
        )
    table = layers_as_integers(pd.DataFrame(rows))
    log.info(
        "scored %d maps (%d steps, %s baseline) in %.1f s: mean deletion AUC %.3f "
        "(random %.3f), insertion AUC %.3f (random %.3f)",
        len(table),
        steps,
        baseline,
        time.perf_counter() - started,
        table["deletion_auc"].mean(),
        table["deletion_auc_random"].mean(),
        table["insertion_auc"].mean(),
        table["insertion_auc_random"].mean(),
    )
    return table


# consistency


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation over the entries both maps define (ties averaged)."""
    a, b = np.ravel(a), np.ravel(b)
    keep = np.isfinite(a) & np.isfinite(b)
    return pearson(rankdata(a[keep]), rankdata(b[keep]))


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with tied values sharing their average rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    return (starts + (counts + 1) / 2)[inverse.ravel()]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else float("nan")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity over the entries both maps define."""
    a, b = np.ravel(a), np.ravel(b)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep].astype(np.float64), b[keep].astype(np.float64)
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else float("nan")


def common_frame(data: Mapping, long_side: int = 64) -> np.ndarray:
    """A map sampled on its photo at a fixed small size, so checkpoints compare."""
    width, height = (int(v) for v in data["photo_size"])
    factor = long_side / max(width, height)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    grid = data["image_relevance"][None]
    return to_photo(grid, data["crop_box"], (width, height), size)[0]


def consistency(map_dirs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Per map: prompt sensitivity and agreement with the other checkpoints.

    prompt_sensitivity is the mean of 1 - Spearman (and 1 - cosine) against
    the maps of the other prompts (same checkpoint and image);
    checkpoint_agreement the mean Spearman (and cosine) against the maps of
    the other checkpoints (same image and prompt), all compared on the photo.
    """
    maps = {}
    for map_dir in map_dirs:
        manifest = read_manifest(map_dir)
        for entry in manifest["maps"]:
            key = tuple(manifest[k] for k in KEYS[:3]) + (entry["prompt"],)
            maps[key] = common_frame(load_map(entry["npz"]))
    rows = []
    for key, frame in maps.items():
        experiment, checkpoint, image, prompt = key
        prompts = [
            other for k, other in maps.items() if k[:3] == key[:3] and k[3] != prompt
        ]
        checkpoints = [
            other
            for k, other in maps.items()
            if (k[0], k[2], k[3]) == (experiment, image, prompt) and k[1] != checkpoint
        ]
        rows.append(
            dict(
                zip(KEYS, key),
                prompt_sensitivity=_mean([1 - spearman(frame, o) for o in prompts]),
                prompt_sensitivity_cosine=_mean(
                    [1 - cosine(frame, o) for o in prompts]
                ),
                checkpoint_agreement=_mean([spearman(frame, o) for o in checkpoints]),
                checkpoint_agreement_cosine=_mean(
                    [cosine(frame, o) for o in checkpoints]
                ),
            )
        )
    return pd.DataFrame(rows, columns=KEYS + CONSISTENCY)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def aggregate_scores(
    score_tables: Sequence[str | os.PathLike],
    map_dirs: Sequence[str | os.PathLike],
    path: str | os.PathLike,
) -> pd.DataFrame:
    """One CSV, one row per map: faithfulness areas and consistency."""
    scores = pd.concat(
        [pd.read_csv(table) for table in score_tables], ignore_index=True
    )
    scores = layers_as_integers(scores)
    table = scores.merge(consistency(map_dirs), on=KEYS, how="left", validate="1:1")
    table = table.sort_values(KEYS, kind="stable").reset_index(drop=True)
    write_csv(table, path)
    log.info(
        "%d relevance maps of %d checkpoints: mean prompt sensitivity %.3f, mean "
        "checkpoint agreement %.3f",
        len(table),
        table["checkpoint"].nunique(),
        table["prompt_sensitivity"].mean(),
        table["checkpoint_agreement"].mean(),
    )
    return table


def layers_as_integers(table: pd.DataFrame) -> pd.DataFrame:
    """Make start_layer nullable integers: empty for Grad-CAM maps, not -1 or 11.0."""
    if "start_layer" in table:
        table = table.assign(start_layer=table["start_layer"].astype("Int64"))
    return table


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a table as CSV, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


# synthetic localisation


@dataclass
class Scene:
    """A synthetic photo with objects pasted at known boxes (x0, y0, x1, y1)."""

    name: str
    image: Image.Image
    boxes: dict[str, tuple[int, int, int, int]]
    prompts: dict[str, str]


def paste(
    canvas: Image.Image, photo: Image.Image, corner: str, scale: float
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Paste `photo` (long side = scale x canvas side) into a canvas corner."""
    side = canvas.width
    factor = scale * side / max(photo.size)
    width, height = round(photo.width * factor), round(photo.height * factor)
    margin = round(0.04 * side)
    x0 = margin if corner[1] == "l" else side - margin - width
    y0 = margin if corner[0] == "t" else side - margin - height
    canvas = canvas.copy()
    canvas.paste(photo.resize((width, height), Image.Resampling.BICUBIC), (x0, y0))
    return canvas, (x0, y0, x0 + width, y0 + height)


def synthetic_scenes(
    objects: Mapping[str, tuple[Image.Image, str]],
    background: Image.Image,
    size: int = 448,
    scale: float = 0.45,
) -> list[Scene]:
    """Every pair of objects at opposite corners, both ways round, on a background.

    `objects` maps a name to (photo, prompt). Each scene asks for both
    objects, so each map has one target box and one distractor box.
    """
    if len(objects) < 2:
        raise ValueError("localisation needs at least two objects to pair up")
    if not 0.1 <= scale <= 0.5:
        raise ValueError(
            f"scale {scale} must lie in [0.1, 0.5] so objects do not overlap"
        )
    check_prompts([prompt for _, prompt in objects.values()])
    side = min(background.size)
    left, top = (background.width - side) // 2, (background.height - side) // 2
    base = background.convert("RGB").crop((left, top, left + side, top + side))
    base = base.resize((size, size), Image.Resampling.BICUBIC)
    scenes = []
    for a, b in itertools.combinations(objects, 2):
        for first, second in ((a, b), (b, a)):
            canvas, box_first = paste(base, objects[first][0], "tl", scale)
            canvas, box_second = paste(canvas, objects[second][0], "br", scale)
            scenes.append(
                Scene(
                    name=f"{first}+{second}",
                    image=canvas,
                    boxes={first: box_first, second: box_second},
                    prompts={first: objects[first][1], second: objects[second][1]},
                )
            )
    return scenes


def box_mass(photo_map: np.ndarray, box: Sequence[int]) -> float:
    """Share of a non-negative map's total mass that lies inside a box."""
    values = np.nan_to_num(np.clip(photo_map, 0, None))
    total = values.sum()
    x0, y0, x1, y1 = box
    return float(values[y0:y1, x0:x1].sum() / total) if total > 0 else float("nan")


def pointing_hit(photo_map: np.ndarray, box: Sequence[int]) -> bool:
    """Whether the map's maximum falls inside the box."""
    y, x = np.unravel_index(np.nanargmax(photo_map), photo_map.shape)
    x0, y0, x1, y1 = box
    return bool(x0 <= x < x1 and y0 <= y < y1)


def localisation_scores(
    model,
    preprocess,
    tokenizer,
    scenes: Sequence[Scene],
    start_layer: int = -1,
    start_layer_text: int | None = None,
    checkpoint: str = "",
) -> pd.DataFrame:
    """Pointing game and mass in the target / distractor box for each scene map."""
    started = time.perf_counter()
    rows = []
    for scene in scenes:
        names = list(scene.prompts)
        result = relevance_map(
            model,
            preprocess,
            tokenizer,
            scene.image,
            [scene.prompts[n] for n in names],
            start_layer,
            start_layer_text,
        )
        photo_maps = result.photo_maps()
        area = float(np.isfinite(photo_maps[0]).sum())
        for index, name in enumerate(names):
            box = scene.boxes[name]
            (other,) = [n for n in names if n != name]
            fraction = (box[2] - box[0]) * (box[3] - box[1]) / area
            mass = box_mass(photo_maps[index], box)
            rows.append(
                {
                    "checkpoint": checkpoint,
                    "scene": scene.name,
                    "object": name,
                    "prompt": scene.prompts[name],
                    "method": result.method,
                    "start_layer": result.start_layer,
                    "hit": pointing_hit(photo_maps[index], box),
                    "mass_in_box": mass,
                    "mass_in_distractor": box_mass(
                        photo_maps[index], scene.boxes[other]
                    ),
                    "box_fraction": fraction,
                    "mass_ratio": mass / fraction,
                }
            )
    table = layers_as_integers(pd.DataFrame(rows))
    log.info(
        "localisation of %s on %d scenes in %.1f s: pointing game %.2f, mass in box "
        "%.3f vs %.3f by chance",
        checkpoint or "model",
        len(scenes),
        time.perf_counter() - started,
        table["hit"].mean(),
        table["mass_in_box"].mean(),
        table["box_fraction"].mean(),
    )
    return table


def localisation_from_config(
    settings: Mapping, images: Mapping[str, Mapping]
) -> list[Scene]:
    """Build the synthetic scenes of config key relevance.localisation."""
    from clipstudy.relevance import load_photo

    objects = {
        name: (load_photo(images[spec["image"]]), spec["prompt"])
        for name, spec in settings["objects"].items()
    }
    return synthetic_scenes(
        objects,
        load_photo(images[settings["background"]]),
        size=settings.get("size", 448),
        scale=settings.get("scale", 0.45),
    )


def summarise_localisation(table: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint: pointing-game accuracy and mean relevance mass in the box."""
    return (
        table.groupby("checkpoint", sort=True)
        .agg(
            maps=("hit", "size"),
            pointing_game=("hit", "mean"),
            mass_in_box=("mass_in_box", "mean"),
            mass_in_distractor=("mass_in_distractor", "mean"),
            box_fraction=("box_fraction", "mean"),
            mass_ratio=("mass_ratio", "mean"),
        )
        .reset_index()
    )


def aggregate_localisation(
    tables: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    summary_path: str | os.PathLike,
) -> pd.DataFrame:
    """Concatenate per-checkpoint localisation tables and write a summary."""
    table = pd.concat([pd.read_csv(t) for t in tables], ignore_index=True)
    table = layers_as_integers(table)
    write_csv(table, path)
    summary = summarise_localisation(table)
    write_csv(summary, summary_path)
    for row in summary.itertuples():
        log.info(
            "%s: pointing game %.2f, mass ratio %.2f",
            row.checkpoint,
            row.pointing_game,
            row.mass_ratio,
        )
    return summary
