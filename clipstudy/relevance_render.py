"""Save relevance maps and draw them: overlays, experiment grids, coloured tokens."""

import html
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from clipstudy.data import atomic_path
from clipstudy.relevance import RelevanceMap, minmax, relevance_map

log = logging.getLogger(__name__)

MANIFEST = "maps.json"
TOKEN_RGB = (214, 39, 40)


def prompt_slug(index: int, prompt: str, width: int = 48) -> str:
    """File-name stem of a prompt: its position and its words, lower case."""
    words = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:width].strip("-")
    return f"{index:02d}-{words or 'prompt'}"


def overlay(
    photo: Image.Image,
    photo_map: np.ndarray,
    colormap: str = "jet",
    alpha: float = 0.5,
    max_side: int | None = 768,
) -> Image.Image:
    """Blend a min-max scaled map (H, W; NaN = no data) over the photo, in RGB."""
    photo = photo.convert("RGB")
    if photo_map.shape != (photo.height, photo.width):
        raise ValueError(
            f"map {photo_map.shape} does not match photo {photo.height}x{photo.width}"
        )
    pixels = np.asarray(photo, dtype=np.float32) / 255
    scaled = minmax(photo_map[None])[0]
    heat = matplotlib.colormaps[colormap](np.nan_to_num(scaled))[..., :3]
    weight = np.where(np.isnan(scaled), 0.0, alpha)[..., None]
    blended = (1 - weight) * pixels + weight * heat
    image = Image.fromarray(np.round(blended * 255).astype(np.uint8))
    if max_side and max(image.size) > max_side:
        factor = max_side / max(image.size)
        size = (round(image.width * factor), round(image.height * factor))
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image


def save_map(path: str | os.PathLike, result: RelevanceMap, index: int, **meta) -> None:
    """Write prompt `index` of a result as one npz: map, text relevance, metadata."""
    arrays = {
        "image_relevance": result.image_relevance[index].numpy(),
        "text_relevance": result.text_relevance[index].numpy(),
        "tokens": result.tokens[index],
        "token_text": np.array(result.token_text[index]),
        "token_scores": result.token_scores()[index].astype(np.float32),
        "eot": np.int64(result.eot[index]),
        "logit": np.float32(result.logits[index]),
        "prompt": np.array(result.prompts[index]),
        "method": np.array(result.method),
        # float so that a map without transformer blocks (Grad-CAM) stores NaN
        "start_layer": np.float64(
            np.nan if result.start_layer is None else result.start_layer
        ),
        "start_layer_text": np.int64(result.start_layer_text),
        "grid": np.array(result.grid, dtype=np.int64),
        "input_size": np.array(result.input_size, dtype=np.int64),
        "photo_size": np.array(result.photo_size, dtype=np.int64),
        "crop_box": np.array(result.crop_box, dtype=np.float64),
    }
    arrays.update({key: np.array(value) for key, value in meta.items()})
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_map(path: str | os.PathLike) -> dict:
    """Read a map npz of save_map as Python and NumPy values (start_layer: int/None)."""
    with np.load(path) as data:
        out = {key: data[key] for key in data.files}
    for key, value in out.items():
        if value.ndim == 0:
            out[key] = value.item()
    out["token_text"] = [str(t) for t in out["token_text"]]
    layer = out.get("start_layer")
    if layer is not None:
        out["start_layer"] = None if np.isnan(layer) else int(layer)
    return out


def render_relevance(
    model,
    preprocess,
    tokenizer,
    photo: Image.Image,
    prompts: Sequence[str],
    out_dir: str | os.PathLike,
    start_layer: int = -1,
    start_layer_text: int | None = None,
    colormap: str = "jet",
    **meta: str,
) -> Path:
    """Compute one photo's maps for all prompts in one pass; write npz + overlays.

    `out_dir` gets `<slug>.npz`, `<slug>.png` per prompt and a manifest
    `maps.json`; it is filled in a temporary folder and moved into place.
    """
    started = time.perf_counter()
    result = relevance_map(
        model, preprocess, tokenizer, photo, prompts, start_layer, start_layer_text
    )
    photo_maps = result.photo_maps()
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    entries = []
    try:
        for index, prompt in enumerate(result.prompts):
            slug = prompt_slug(index, prompt)
            save_map(tmp / f"{slug}.npz", result, index, **meta)
            overlay(photo, photo_maps[index], colormap).save(tmp / f"{slug}.png")
            entries.append(
                {"prompt": prompt, "npz": f"{slug}.npz", "overlay": f"{slug}.png"}
            )
        manifest = {**meta, "method": result.method, "maps": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    layers = "none (Grad-CAM)" if result.start_layer is None else result.start_layer
    log.info(
        "rendered %d %s maps (grid %s, start layer %s) of a %dx%d photo in %.1f s",
        len(entries),
        result.method,
        "x".join(map(str, result.grid)),
        layers,
        *result.photo_size,
        time.perf_counter() - started,
    )
    return out_dir


def read_manifest(map_dir: str | os.PathLike) -> dict:
    """The manifest of a map folder, with absolute paths to its files."""
    map_dir = Path(map_dir)
    manifest = json.loads((map_dir / MANIFEST).read_text())
    for entry in manifest["maps"]:
        entry["npz"] = map_dir / entry["npz"]
        entry["overlay"] = map_dir / entry["overlay"]
    return manifest


def _cells(map_dirs: Sequence[str | os.PathLike]) -> tuple[list, list, dict]:
    """Rows (checkpoints), columns ((image, prompt)) and entries by (row, column)."""
    rows, columns, cells = [], [], {}
    for map_dir in map_dirs:
        manifest = read_manifest(map_dir)
        row = manifest["checkpoint"]
        rows += [row] if row not in rows else []
        for entry in manifest["maps"]:
            column = (manifest["image"], entry["prompt"])
            columns += [column] if column not in columns else []
            cells[row, column] = entry
    return rows, columns, cells


def render_grid(
    map_dirs: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    title: str = "",
    cell_inches: float = 2.2,
) -> None:
    """One PNG: checkpoints as rows, (image, prompt) as columns, overlays in cells."""
    rows, columns, cells = _cells(map_dirs)
    figure = Figure(
        figsize=(cell_inches * len(columns) + 1.6, cell_inches * len(rows) + 0.8)
    )
    axes = figure.subplots(len(rows), len(columns), squeeze=False)
    several_images = len({image for image, _ in columns}) > 1
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            entry = cells.get((row, column))
            if entry is not None:
                with Image.open(entry["overlay"]) as image:
                    ax.imshow(np.asarray(image.convert("RGB")))
            if i == 0:
                image, prompt = column
                label = f"{image}: {prompt}" if several_images else prompt
                ax.set_title(_wrap(label, 24), fontsize=9)
            if j == 0:
                ax.set_ylabel(_wrap(row, 18), fontsize=8, rotation=0, ha="right")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    log.info("drew a %dx%d relevance grid to %s", len(rows), len(columns), path)


def _wrap(text: str, width: int) -> str:
    lines, line = [], ""
    for word in re.split(r"(?<=[ _])", text):
        if line and len(line) + len(word) > width:
            lines.append(line.rstrip())
            line = ""
        line += word
    return "\n".join(lines + [line.rstrip()])


def _token_rows(map_dirs: Sequence[str | os.PathLike]) -> tuple[list, list, dict]:
    rows, columns, cells = _cells(map_dirs)
    scores = {}
    for key, entry in cells.items():
        data = load_map(entry["npz"])
        words = data["token_text"][1 : data["eot"]]
        scores[key] = list(zip(words, data["token_scores"].tolist()))
    return rows, columns, scores


def tokens_html(map_dirs: Sequence[str | os.PathLike], title: str = "") -> str:
    """An HTML snippet: per checkpoint and prompt, tokens shaded by their relevance."""
    rows, columns, scores = _token_rows(map_dirs)
    red, green, blue = TOKEN_RGB
    head = "".join(
        f"<th>{html.escape(image)}: {html.escape(prompt)}</th>"
        for image, prompt in columns
    )
    body = []
    for row in rows:
        cells = []
        for column in columns:
            pairs = scores.get((row, column), [])
            top = max((score for _, score in pairs), default=0) or 1
            spans = "".join(
                f'<span title="{score:.3f}" style="background:rgba({red},{green},'
                f'{blue},{score / top:.2f});padding:1px 2px">{html.escape(word)}</span>'
                for word, score in pairs
            )
            cells.append(f"<td>{spans}</td>")
        body.append(f"<tr><th>{html.escape(row)}</th>{''.join(cells)}</tr>")
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    return (
        '<div class="relevance-tokens"><table>'
        f"{caption}<tr><th>checkpoint</th>{head}</tr>{''.join(body)}</table></div>\n"
    )


def render_tokens_png(
    map_dirs: Sequence[str | os.PathLike], path: str | os.PathLike, title: str = ""
) -> None:
    """One PNG: per (image, prompt) a checkpoint x token panel shaded by relevance."""
    rows, columns, scores = _token_rows(map_dirs)
    widths = [
        max([len(scores.get((row, column), [])) for row in rows] + [1])
        for column in columns
    ]
    figure = Figure(figsize=(0.8 * sum(widths) + 2.5, 0.35 * len(rows) + 1.4))
    axes = figure.subplots(
        1, len(columns), gridspec_kw={"width_ratios": widths}, squeeze=False
    )
    for ax, column, width in zip(axes[0], columns, widths):
        values = np.full((len(rows), width), np.nan)
        for i, row in enumerate(rows):
            pairs = scores.get((row, column), [])
            top = max((score for _, score in pairs), default=0) or 1
            for j, (word, score) in enumerate(pairs):
                values[i, j] = score / top
                ax.text(j, i, word, ha="center", va="center", fontsize=7)
        ax.imshow(values, cmap="Reds", vmin=0, vmax=1.6, aspect="auto")
        ax.set_title(_wrap(f"{column[0]}: {column[1]}", 28), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(rows if ax is axes[0, 0] else [], fontsize=7)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)


def render_experiment(
    map_dirs: Sequence[str | os.PathLike],
    grid_png: str | os.PathLike,
    tokens_html_path: str | os.PathLike,
    tokens_png: str | os.PathLike,
    title: str = "",
) -> None:
    """Draw an experiment's overlay grid and its token relevance (HTML and PNG)."""
    render_grid(map_dirs, grid_png, title)
    with atomic_path(tokens_html_path) as tmp:
        tmp.write_text(tokens_html(map_dirs, title))
    render_tokens_png(map_dirs, tokens_png, title)
