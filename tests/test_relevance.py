import html as html_lib
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from clipstudy.config import ConfigError, check_relevance
from clipstudy.models import Checkpoint, load_checkpoint
from clipstudy.relevance import (
    BUNDLED_PHOTOS,
    UnsupportedModelError,
    chefer,
    crop_box,
    explain,
    grad_cam,
    grid_size,
    load_photo,
    method_for_config,
    relevance_map,
    to_grid,
    to_photo,
    upsample,
)
from clipstudy.relevance_render import (
    load_map,
    overlay,
    read_manifest,
    render_experiment,
    render_relevance,
)
from clipstudy.relevance_scores import (
    box_mass,
    cell_index,
    consistency,
    layers_as_integers,
    localisation_scores,
    perturbation_curves,
    pointing_hit,
    score_maps,
    spearman,
    synthetic_scenes,
    write_csv,
)
from clipstudy.tiny import MODEL_CONFIGS

CPU = torch.device("cpu")
GOLDEN = Path(__file__).with_name("data") / "chefer_tiny_clip.npz"
SHARED_GOLDEN = (
    Path(__file__).resolve().parents[2] / "shared/reference/golden/chefer_tiny_clip.npz"
)
START_LAYERS = {"last": -1, "from0": 0, "from1": 1}


def golden_clip(quick_gelu: bool = True) -> nn.Module:
    """The tiny CLIP of the golden fixture, rebuilt from its seed recipe."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    model = CLIP(
        embed_dim=64,
        vision_cfg=CLIPVisionCfg(
            layers=3, width=128, head_width=64, patch_size=16, image_size=64
        ),
        text_cfg=CLIPTextCfg(
            context_length=77, vocab_size=49408, width=128, heads=2, layers=3
        ),
        quick_gelu=quick_gelu,
    )
    state = {}
    for key, value in sorted(model.state_dict().items()):
        rng = np.random.RandomState(zlib.crc32(key.encode()))
        array = rng.standard_normal(tuple(value.shape)).astype(np.float32) * 0.02
        module = key.split(".")[-2] if "." in key else ""
        if key.endswith(".weight") and module.startswith("ln"):
            array += 1.0
        if key == "logit_scale":
            array = np.full(array.shape, np.log(1 / 0.07), np.float32)
        state[key] = torch.from_numpy(array.astype(np.float16).astype(np.float32))
    model.load_state_dict(state)
    return model.eval()


def assert_matches(actual: torch.Tensor, expected: np.ndarray, tol: float) -> None:
    """Element-wise agreement to `tol`, relative per element and to the largest."""
    np.testing.assert_allclose(
        np.asarray(actual), expected, rtol=tol, atol=tol * np.abs(expected).max()
    )


def assert_golden(image_rel, text_rel, golden, name: str, tol: float = 1e-5) -> None:
    """Image relevance and text relevance minus its identity start match the golden."""
    eye = np.eye(text_rel.shape[-1], dtype=np.float64)
    assert_matches(image_rel, golden[f"image_relevance_{name}"], tol)
    assert_matches(
        np.asarray(text_rel, dtype=np.float64) - eye,
        golden[f"text_relevance_{name}"].astype(np.float64) - eye,
        tol,
    )


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def golden_model():
    return golden_clip()


@pytest.fixture(scope="module")
def tiny(tiny_checkpoints):
    def load(name):
        path = str(tiny_checkpoints[name])
        return load_checkpoint(Checkpoint(name, path), CPU, [MODEL_CONFIGS])

    return {name: load(name) for name in ("tiny-vit", "tiny-rn")}


@pytest.fixture(scope="module")
def coffee():
    return load_photo({"skimage": "coffee"})


# Chefer relevance against the reference


@pytest.mark.parametrize("name", START_LAYERS)
def test_chefer_matches_reference(golden, golden_model, name):
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    image_rel, text_rel = chefer(golden_model, image, tokens, START_LAYERS[name])
    assert image_rel.shape == (3, 16) and text_rel.shape == (3, 77, 77)
    assert_golden(image_rel, text_rel, golden, name)


def test_fixture_is_the_shared_golden_file():
    import hashlib

    if not SHARED_GOLDEN.is_file():
        pytest.skip(f"shared golden fixture {SHARED_GOLDEN} is not on this machine")
    digests = [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (GOLDEN, SHARED_GOLDEN)
    ]
    assert digests[0] == digests[1], f"{GOLDEN} differs from {SHARED_GOLDEN}; copy it"


def test_golden_logits_match(golden, golden_model):
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    result = explain(golden_model, image, tokens)
    assert np.allclose(
        result.logits.numpy(), np.diag(golden["logits_per_image"]), atol=1e-5
    )


@pytest.mark.parametrize("tower", ["image", "text"])
def test_gelu_instead_of_quickgelu_fails_the_reference(golden, tower):
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    image_rel, text_rel = chefer(golden_clip(quick_gelu=False), image, tokens)
    eye = np.eye(77)
    actual, expected = {
        "image": (image_rel.numpy(), golden["image_relevance_last"]),
        "text": (text_rel.numpy() - eye, golden["text_relevance_last"] - eye),
    }[tower]
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_matches(actual, expected, 1e-5)
    with pytest.raises(AssertionError):
        assert_matches(actual, expected, 1e-3)


def test_batched_prompts_equal_one_at_a_time(golden, golden_model):
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    image_rel, text_rel = chefer(golden_model, image, tokens, start_layer=0)
    for i in range(len(tokens)):
        single_image, single_text = chefer(golden_model, image, tokens[i : i + 1], 0)
        assert torch.allclose(single_image[0], image_rel[i], rtol=1e-5, atol=1e-8)
        assert torch.allclose(single_text[0], text_rel[i], rtol=1e-5, atol=1e-8)


def test_text_relevance_is_zero_after_end_of_text(golden, golden_model):
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    _, text_rel = chefer(golden_model, image, tokens, start_layer=0)
    eye = torch.eye(77)
    for relevance, eot in zip(text_rel, tokens.argmax(dim=-1).tolist()):
        assert torch.all(relevance[eot, eot + 1 :] == 0)
        assert torch.equal(relevance[eot + 1 :], eye[eot + 1 :])
        assert torch.all(relevance.triu(1) == 0)
        assert relevance[eot, 1:eot].sum() > 0


def test_start_layer_out_of_range_and_training_mode_raise(golden, golden_model):
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    with pytest.raises(ValueError, match="outside the image tower's 3 blocks"):
        chefer(golden_model, image, tokens, start_layer=3)
    golden_model.train()
    try:
        with pytest.raises(ValueError, match="eval"):
            chefer(golden_model, image, tokens)
    finally:
        golden_model.eval()


def test_hooks_are_removed_and_no_grad_callers_work(golden, golden_model):
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    with torch.inference_mode():
        image_rel, text_rel = chefer(golden_model, image, tokens)
    assert_golden(image_rel, text_rel, golden, "last")
    blocks = [
        *golden_model.visual.transformer.resblocks,
        *golden_model.transformer.resblocks,
    ]
    assert all(not block.attn._forward_hooks for block in blocks)


def test_unknown_attention_module_fails_loudly(golden):
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    custom = CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(
            layers=1,
            width=64,
            head_width=32,
            patch_size=16,
            image_size=64,
            qk_norm=True,
        ),
        text_cfg=CLIPTextCfg(width=64, heads=2, layers=1),
    ).eval()
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    with pytest.raises(UnsupportedModelError, match="CustomResidualAttentionBlock"):
        chefer(custom, image, tokens)
    model = golden_clip()
    model.visual.transformer.resblocks[1].attn = nn.Identity()
    with pytest.raises(UnsupportedModelError, match="block 1 .* Identity"):
        chefer(model, image, tokens)


def test_unsupported_tower_raises(golden):
    model = golden_clip()
    model.visual = nn.Linear(3, 3)
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    with pytest.raises(UnsupportedModelError, match="no relevance method.*Linear"):
        explain(model, image, tokens)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_chefer_on_gpu_matches_reference(golden):
    model = golden_clip().cuda()
    image, tokens = (
        torch.from_numpy(golden["image"]),
        torch.from_numpy(golden["tokens"]),
    )
    image_rel, text_rel = chefer(model, image, tokens, start_layer=0)
    assert_golden(image_rel, text_rel, golden, "from0", tol=1e-4)


def test_method_for_config_rejects_unsupported_checkpoints():
    assert method_for_config("ViT-L-14-336-quickgelu") == "chefer"
    assert method_for_config("RN101-quickgelu") == "gradcam"
    with pytest.raises(UnsupportedModelError, match="timm image tower"):
        method_for_config("ViT-SO400M-14-SigLIP")
    with pytest.raises(UnsupportedModelError, match="class token"):
        method_for_config("coca_ViT-B-32")


def study_config() -> dict:
    """The repository's config.yaml."""
    import yaml

    return yaml.safe_load((Path(__file__).parent.parent / "config.yaml").read_text())


STUDY_CHECKPOINTS = study_config()["checkpoints"]


@pytest.mark.parametrize("key", STUDY_CHECKPOINTS)
def test_every_study_checkpoint_has_a_relevance_method(key):
    assert method_for_config(STUDY_CHECKPOINTS[key]["model"]) in ("chefer", "gradcam")


def test_check_relevance_accepts_the_study():
    check_relevance(study_config())


@pytest.mark.parametrize(
    "model, reason",
    [("ViT-SO400M-14-SigLIP", "timm image tower"), ("convnext_base", "convnext")],
)
def test_check_relevance_rejects_an_unsupported_checkpoint(model, reason):
    config = study_config()
    config["checkpoints"]["odd"] = {"model": model, "pretrained": "x.pt"}
    config["relevance"]["experiments"]["architectures"]["checkpoints"].append("odd")
    with pytest.raises(ConfigError) as caught:
        check_relevance(config)
    message = str(caught.value)
    assert "\n" not in message and reason in message
    assert message.startswith(
        f"config key relevance.experiments.architectures.checkpoints: checkpoint odd: "
        f"no relevance method for {model}"
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda r: r["experiments"]["cat"]["images"].append("dog"),
            "relevance.experiments.cat.images: unknown image 'dog'",
        ),
        (
            lambda r: r["localisation"].update(background="sky"),
            "relevance.localisation.background: unknown image 'sky'",
        ),
        (
            lambda r: r["localisation"]["checkpoints"].append("nope"),
            "relevance.localisation.checkpoints: unknown checkpoint 'nope'",
        ),
    ],
)
def test_check_relevance_rejects_unknown_names(change, message):
    config = study_config()
    change(config["relevance"])
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_relevance(config)


def test_relevance_schema_accepts_the_study_and_rejects_bad_input():
    import jsonschema
    import yaml

    repo = Path(__file__).resolve().parent.parent
    schema = yaml.safe_load((repo / "schemas" / "relevance.schema.yaml").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    study = yaml.safe_load((repo / "config.yaml").read_text())["relevance"]
    validator.validate(study)
    bad = [
        {**study, "images": {"x": {"skimage": "coffee", "path": "a.png"}}},
        {
            **study,
            "experiments": {
                "e": {"images": ["coffee"], "prompts": [" "], "checkpoints": ["c"]}
            },
        },
        {
            **study,
            "experiments": {
                "e": {"images": ["coffee"], "prompts": [], "checkpoints": ["c"]}
            },
        },
        {**study, "scores": {"baseline": "noise"}},
    ]
    for config in bad:
        assert not validator.is_valid(config)


# Grad-CAM and the single entry point


def test_grad_cam_on_tiny_resnet(tiny, coffee):
    model, preprocess, tokenizer = tiny["tiny-rn"]
    prompts = ["a cup of coffee", "a spoon", "a table"]
    result = relevance_map(model, preprocess, tokenizer, coffee, prompts)
    assert result.method == "gradcam" and result.grid == (2, 2)
    assert result.start_layer is None
    maps = result.image_relevance
    assert maps.shape == (3, 2, 2) and torch.isfinite(maps).all()
    assert (maps >= 0).all() and all(m.max() > m.min() for m in maps)
    image_rel, text_rel = grad_cam(model, preprocess(coffee)[None], tokenizer(prompts))
    assert torch.allclose(image_rel, maps.flatten(1), rtol=1e-5, atol=1e-7)
    assert text_rel.shape == (3, 77, 77)
    with pytest.raises(UnsupportedModelError, match="ViT"):
        chefer(model, preprocess(coffee)[None], tokenizer(prompts))


def test_grad_cam_matches_a_hand_computation(tiny, coffee):
    model, preprocess, tokenizer = tiny["tiny-rn"]
    image, tokens = preprocess(coffee)[None], tokenizer(["a cup of coffee"])
    stored = []
    handle = model.visual.layer4.register_forward_hook(
        lambda module, args, output: stored.append(output)
    )
    try:
        with torch.enable_grad():
            image_features = F.normalize(model.encode_image(image), dim=-1)
            text_features = F.normalize(model.encode_text(tokens), dim=-1)
            logit = model.logit_scale.exp() * (image_features @ text_features.T)[0, 0]
            (grads,) = torch.autograd.grad(logit, stored[0])
    finally:
        handle.remove()
    weights = grads[0].mean(dim=(1, 2))  # one weight per channel
    expected = torch.relu((weights[:, None, None] * stored[0][0]).sum(dim=0))

    image_rel, _ = grad_cam(model, image, tokens)
    assert expected.shape == (2, 2) and expected.max() > 0
    assert torch.allclose(image_rel[0], expected.flatten(), rtol=1e-5, atol=1e-7)


def test_grad_cam_batched_prompts_equal_one_at_a_time(tiny, coffee):
    model, preprocess, tokenizer = tiny["tiny-rn"]
    image = preprocess(coffee)[None]
    tokens = tokenizer(["a cup of coffee", "a spoon", "a wooden table"])
    image_rel, text_rel = grad_cam(model, image, tokens)
    for i in range(len(tokens)):
        single_image, single_text = grad_cam(model, image, tokens[i : i + 1])
        assert torch.allclose(single_image[0], image_rel[i], rtol=1e-5, atol=1e-7)
        assert torch.allclose(single_text[0], text_rel[i], rtol=1e-5, atol=1e-8)


def test_relevance_map_picks_chefer_for_vit(tiny, coffee):
    model, preprocess, tokenizer = tiny["tiny-vit"]
    result = relevance_map(model, preprocess, tokenizer, coffee, ["a cup", "a spoon"])
    assert result.method == "chefer" and result.grid == (4, 4)
    assert result.token_text[1] == ["<start_of_text>", "a", "spoon", "<end_of_text>"]
    assert [len(s) for s in result.token_scores()] == [2, 2]
    assert np.allclose([s.sum() for s in result.token_scores()], 1)


@pytest.mark.parametrize("prompts", [[], ["a cup", "  "]])
def test_empty_prompts_raise(tiny, coffee, prompts):
    model, preprocess, tokenizer = tiny["tiny-vit"]
    with pytest.raises(ValueError, match="prompt"):
        relevance_map(model, preprocess, tokenizer, coffee, prompts)


def _shrunk(name: str):
    """An open_clip config's image geometry with a tiny random tower."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    vision = dict(open_clip.get_model_config(name)["vision_cfg"])
    if isinstance(vision["layers"], list):
        vision.update(layers=[1, 1, 1, 1], width=8)
    else:
        vision.update(layers=1, width=32, head_width=16)
    text = CLIPTextCfg(width=32, heads=2, layers=1)
    model = CLIP(embed_dim=16, vision_cfg=CLIPVisionCfg(**vision), text_cfg=text)
    preprocess = open_clip.image_transform(vision["image_size"], is_train=False)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


@pytest.mark.parametrize(
    "name, grid",
    [
        ("ViT-B-32", 7),
        ("ViT-B-16", 14),
        ("ViT-B-16-plus-240", 15),
        ("ViT-L-14", 16),
        ("ViT-L-14-336", 24),
        ("RN50", 7),
        ("RN101", 7),
    ],
)
def test_grid_sizes_of_study_configs(name, grid, coffee):
    model, preprocess, tokenizer = _shrunk(name)
    assert grid_size(model) == (grid, grid)
    result = relevance_map(model, preprocess, tokenizer, coffee, ["a cup", "a saucer"])
    assert result.image_relevance.shape == (2, grid, grid)
    photo = result.photo_maps()
    assert photo.shape == (2, 400, 600)
    assert np.isfinite(photo[:, :, 100:500]).all() and np.isnan(photo[:, :, :100]).all()


# geometry


def test_crop_box_inverts_shortest_side_resize_and_centre_crop(tiny):
    _, preprocess, _ = tiny["tiny-vit"]
    assert crop_box(preprocess, (600, 400)) == pytest.approx((100, 0, 500, 400))
    # 300x451 -> 64x96 (long side truncated), crop rows 16..80 of 96
    assert crop_box(preprocess, (300, 451)) == pytest.approx(
        (0, 16 * 451 / 96, 300, 80 * 451 / 96)
    )


def test_to_photo_round_trips_through_preprocess():
    from torchvision.transforms import functional as TF

    ramp = torch.linspace(0, 1, 7)
    maps = (ramp[None, :, None] + 2 * ramp[None, None, :]).float()  # (1, 7, 7)
    photo_size = (300, 200)

    class Preprocess:
        from torchvision import transforms as T

        transforms = [T.Resize(224), T.CenterCrop(224)]

    box = crop_box(Preprocess(), photo_size)
    photo = to_photo(maps, box, photo_size)
    assert photo.shape == (1, 200, 300)
    valid = np.isfinite(photo[0])
    # 300x200 -> 336x224, centre crop keeps columns 56..280, i.e. photo 50..250
    assert (
        valid[:, 50:250].all() and not valid[:, :50].any() and not valid[:, 250:].any()
    )
    resized = TF.resize(torch.from_numpy(np.nan_to_num(photo)), 224)
    cropped = TF.center_crop(resized, 224)[0]
    expected = upsample(maps, (224, 224))[0]
    assert (cropped - expected)[4:-4, 4:-4].abs().max() < 0.03


def test_to_grid_and_upsample_shapes():
    flat = torch.arange(2 * 49, dtype=torch.float32).reshape(2, 49)
    grid = to_grid(flat, (7, 7))
    assert grid[1, 2, 3] == 49 + 17
    assert upsample(grid, (224, 224)).shape == (2, 224, 224)
    with pytest.raises(ValueError, match="7x8"):
        to_grid(flat, (7, 8))


# photos


@pytest.mark.parametrize("name", BUNDLED_PHOTOS)
def test_every_bundled_photo_loads_offline(name):
    photo = load_photo({"skimage": name})
    assert photo.mode == "RGB" and min(photo.size) >= 64


def test_schema_lists_the_bundled_photos():
    import yaml

    schema = yaml.safe_load(
        (Path(__file__).parent.parent / "schemas/relevance.schema.yaml").read_text()
    )
    spec = schema["properties"]["images"]["additionalProperties"]["oneOf"][0]
    assert tuple(spec["properties"]["skimage"]["enum"]) == BUNDLED_PHOTOS


@pytest.mark.parametrize("name", ["nope", "eagle", "download_all", "_fetchers"])
def test_load_photo_rejects_what_is_not_a_bundled_photo(name):
    message = rf"^skimage.data.{name} is not a bundled photo; use one of astronaut,"
    with pytest.raises(ValueError, match=message) as caught:
        load_photo({"skimage": name})
    assert str(caught.value).endswith("or a file path ({path: file})")


def test_load_photo_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_photo({"path": str(tmp_path / "missing.png")})
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="does not decode"):
        load_photo({"path": str(tmp_path / "bad.png")})


# rendering


def test_overlay_is_rgb_jet(tmp_path):
    photo = Image.new("RGB", (40, 20), (128, 128, 128))
    values = np.zeros((20, 40), np.float32)
    values[:, 20:] = 1
    values[:, :4] = np.nan
    image = np.asarray(overlay(photo, values, "jet", alpha=1.0)).astype(int)
    low, high, none = image[10, 10], image[10, 30], image[10, 1]
    assert low[2] > 100 and low[0] < 10  # jet minimum: blue
    assert high[0] > 100 and high[2] < 10  # jet maximum: red
    assert none.tolist() == [128, 128, 128]


def test_render_relevance_writes_maps_overlays_and_grid(tiny, coffee, tmp_path):
    prompts = ["a cup of coffee", "a saucer", "a cat's ear"]
    folders = []
    for name in ("tiny-vit", "tiny-rn"):
        model, preprocess, tokenizer = tiny[name]
        folders.append(
            render_relevance(
                model,
                preprocess,
                tokenizer,
                coffee,
                prompts,
                tmp_path / name,
                experiment="breakfast",
                checkpoint=name,
                image="coffee",
            )
        )
    manifest = read_manifest(folders[0])
    assert [m["prompt"] for m in manifest["maps"]] == prompts
    assert manifest["maps"][2]["npz"].name == "02-a-cat-s-ear.npz"
    data = load_map(manifest["maps"][0]["npz"])
    assert data["checkpoint"] == "tiny-vit" and data["prompt"] == prompts[0]
    assert data["method"] == "chefer" and data["start_layer"] == 1
    assert data["image_relevance"].shape == (4, 4) and tuple(data["grid"]) == (4, 4)
    assert data["token_text"][1:5] == ["a", "cup", "of", "coffee"]
    with Image.open(manifest["maps"][0]["overlay"]) as image:
        assert image.size == coffee.size and image.mode == "RGB"

    out = tmp_path / "figures"
    render_experiment(
        folders, out / "grid.png", out / "tokens.html", out / "tokens.png"
    )
    cell, margins = 220, (160, 80)  # 2.2-inch cells at 100 dpi, label margins
    with Image.open(out / "grid.png") as grid:
        width, height = grid.size  # 3 prompt columns, 2 checkpoint rows
    assert abs(width - (3 * cell + margins[0])) <= 2
    assert abs(height - (2 * cell + margins[1])) <= 2

    html = (out / "tokens.html").read_text()
    assert html.count("<tr>") == 3  # header and one row per checkpoint
    headers = re.findall(r"<th>coffee: (.*?)</th>", html)
    assert headers == ["a cup of coffee", "a saucer", "a cat&#x27;s ear"]
    rows = re.findall(r"<tr><th>(tiny-[a-z]+)</th>(.*?)</tr>", html)
    assert [name for name, _ in rows] == ["tiny-vit", "tiny-rn"]
    for _, cells in rows:
        columns = re.findall("<td>(.*?)</td>", cells)
        for entry, cell_html in zip(manifest["maps"], columns, strict=True):
            words = load_map(entry["npz"])["token_text"]
            words = words[1 : words.index("<end_of_text>")]
            spans = re.findall(r'<span title="([0-9.]+)"[^>]*>(.*?)</span>', cell_html)
            assert [html_lib.unescape(word) for _, word in spans] == words
            assert sum(float(score) for score, _ in spans) == pytest.approx(1, abs=0.01)
    assert (out / "tokens.png").stat().st_size > 0


# scores


def test_cell_index_covers_the_grid():
    cells = cell_index((224, 224), (7, 7))
    assert cells[0, 0] == 0 and cells[31, 32] == 1 and cells[223, 223] == 48
    assert np.bincount(cells.ravel()).tolist() == [32 * 32] * 49
    assert np.bincount(cell_index((240, 240), (15, 15)).ravel()).min() == 256


def test_deletion_and_insertion_curves_meet_at_the_ends(tiny, coffee):
    model, preprocess, tokenizer = tiny["tiny-vit"]
    image = preprocess(coffee)[None]
    with torch.no_grad():
        text = F.normalize(model.encode_text(tokenizer(["a cup", "a cat"])), dim=-1)
        clean = model.logit_scale.exp() * F.normalize(model.encode_image(image), dim=-1)
        clean = (clean @ text.T)[0]
    order = np.arange(16)[::-1].copy()
    curves = perturbation_curves(model, image, text, 0, order, (4, 4), steps=4)
    assert curves.fractions.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert curves.deletion_logit[0] == pytest.approx(float(clean[0]), abs=1e-4)
    assert curves.insertion_logit[-1] == pytest.approx(float(clean[0]), abs=1e-4)
    assert curves.deletion[-1] == pytest.approx(curves.insertion[0], abs=1e-6)
    assert curves.deletion[0] == pytest.approx(float(clean.softmax(0)[0]), abs=1e-5)
    assert len(set(np.round(curves.deletion_logit, 5))) > 2


def test_score_maps_one_row_per_map(tiny, coffee, tmp_path):
    model, preprocess, tokenizer = tiny["tiny-vit"]
    folder = render_relevance(
        model,
        preprocess,
        tokenizer,
        coffee,
        ["a cup", "a spoon"],
        tmp_path / "m",
        experiment="e",
        checkpoint="tiny-vit",
        image="coffee",
    )
    table = score_maps(model, preprocess, tokenizer, coffee, folder, steps=4)
    assert table["prompt"].tolist() == ["a cup", "a spoon"]
    assert table["probability"].sum() == pytest.approx(1, abs=1e-5)
    areas = table[["deletion_auc", "insertion_auc", "deletion_auc_random"]].to_numpy()
    assert np.isfinite(areas).all() and ((areas >= 0) & (areas <= 1)).all()


def test_consistency_of_identical_and_different_maps(tmp_path, tiny, coffee):
    model, preprocess, tokenizer = tiny["tiny-vit"]
    folders = []
    for checkpoint in ("one", "two"):
        folders.append(
            render_relevance(
                model,
                preprocess,
                tokenizer,
                coffee,
                ["a cup", "a spoon"],
                tmp_path / checkpoint,
                experiment="e",
                checkpoint=checkpoint,
                image="coffee",
            )
        )
    table = consistency(folders)
    assert len(table) == 4
    assert np.allclose(table["checkpoint_agreement"], 1)
    assert (table["prompt_sensitivity"] > 0.01).all()
    assert spearman(np.arange(10.0), -np.arange(10.0)) == pytest.approx(-1)


def test_synthetic_localisation(tiny):
    photos = {
        "cat": (load_photo({"skimage": "chelsea"}), "a cat"),
        "rocket": (load_photo({"skimage": "rocket"}), "a rocket"),
        "cup": (load_photo({"skimage": "coffee"}), "a cup"),
    }
    scenes = synthetic_scenes(photos, load_photo({"skimage": "gravel"}), size=128)
    assert len(scenes) == 6 and scenes[0].image.size == (128, 128)
    box_a, box_b = scenes[0].boxes.values()
    assert box_a[2] <= box_b[0] and box_a[3] <= box_b[1]  # opposite corners

    peaked = np.zeros((128, 128))
    x0, y0, x1, y1 = box_b
    peaked[y0:y1, x0:x1] = 1
    peaked[(y0 + y1) // 2, (x0 + x1) // 2] = 2
    assert pointing_hit(peaked, box_b) and not pointing_hit(peaked, box_a)
    assert box_mass(peaked, box_b) == pytest.approx(1) and box_mass(peaked, box_a) == 0
    ys, xs = np.mgrid[:128, :128]
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    bump = np.exp(-((xs - centre_x) ** 2 + (ys - centre_y) ** 2) / (2 * 20.0**2))
    bump[:5] = np.nan  # no data, as outside a centre crop
    fraction = (x1 - x0) * (y1 - y0) / 128**2
    assert box_mass(bump, box_b) > max(fraction, 3 * box_mass(bump, box_a))
    assert pointing_hit(bump, box_b) and not pointing_hit(bump, box_a)

    model, preprocess, tokenizer = tiny["tiny-vit"]
    table = localisation_scores(
        model, preprocess, tokenizer, scenes[:2], checkpoint="t"
    )
    assert len(table) == 4 and set(table["object"]) == {"cat", "rocket"}
    masses = table[["mass_in_box", "mass_in_distractor"]]
    assert (masses >= 0).all().all() and (masses.sum(axis=1) <= 1 + 1e-6).all()
    assert np.allclose(
        table["mass_ratio"], table["mass_in_box"] / table["box_fraction"]
    )
    assert table["start_layer"].tolist() == [1] * 4
    assert (table["box_fraction"] > 0).all() and table["hit"].dtype == bool
    with pytest.raises(ValueError, match="two objects"):
        synthetic_scenes({"cat": photos["cat"]}, load_photo({"skimage": "gravel"}))


def test_manifest_is_plain_json(tiny, coffee, tmp_path):
    model, preprocess, tokenizer = tiny["tiny-rn"]
    folder = render_relevance(
        model,
        preprocess,
        tokenizer,
        coffee,
        ["a cup"],
        tmp_path / "m",
        experiment="e",
        checkpoint="tiny-rn",
        image="coffee",
    )
    manifest = json.loads((folder / "maps.json").read_text())
    assert (
        manifest["method"] == "gradcam" and manifest["maps"][0]["npz"] == "00-a-cup.npz"
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "00-a-cup.npz",
        "00-a-cup.png",
        "maps.json",
    ]


def test_grad_cam_maps_have_no_start_layer(tiny, coffee, tmp_path):
    model, preprocess, tokenizer = tiny["tiny-rn"]
    folder = render_relevance(
        model,
        preprocess,
        tokenizer,
        coffee,
        ["a cup", "a spoon"],
        tmp_path / "m",
        experiment="e",
        checkpoint="tiny-rn",
        image="coffee",
    )
    data = load_map(read_manifest(folder)["maps"][0]["npz"])
    assert data["method"] == "gradcam" and data["start_layer"] is None
    assert data["start_layer_text"] == len(model.transformer.resblocks) - 1

    table = score_maps(model, preprocess, tokenizer, coffee, folder, steps=2)
    assert table["start_layer"].isna().all()
    write_csv(table, tmp_path / "scores.csv")
    assert pd.read_csv(tmp_path / "scores.csv")["start_layer"].isna().all()
    vit_scores = tmp_path / "vit.csv"
    write_csv(table.assign(checkpoint="vit", start_layer=[1, 1]), vit_scores)
    both = layers_as_integers(
        pd.concat([pd.read_csv(tmp_path / "scores.csv"), pd.read_csv(vit_scores)])
    )
    assert both["start_layer"].tolist() == [pd.NA, pd.NA, 1, 1]
