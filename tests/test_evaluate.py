import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clipstudy.data import write_classes, write_samples
from clipstudy.evaluate import (
    aggregate,
    build_classifier,
    encode_images,
    evaluate_zeroshot,
    read_features,
)
from clipstudy.metrics import zeroshot_metrics
from clipstudy.models import Checkpoint, load_checkpoint
from clipstudy.tiny import MODEL_CONFIGS

CPU = torch.device("cpu")


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (40, 52, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_vit(tiny_checkpoints):
    path = str(tiny_checkpoints["tiny-vit"])
    return load_checkpoint(Checkpoint("tiny-vit", path), CPU, [MODEL_CONFIGS])


@pytest.fixture
def dataset(tmp_path):
    rows = [(f"img{i:03d}", i % 6, _png(i)) for i in range(30)]
    write_samples(tmp_path / "train.parquet", rows)
    names = ["cat", "dog", "car", "tree", "boat", "cup"]
    write_classes(tmp_path / "classes.json", names, [f"a {n}" for n in names])
    return tmp_path


def test_features_are_normalised_and_match_single_image_encoding(tiny_vit, dataset):
    model, preprocess, _ = tiny_vit
    out = dataset / "features.parquet"
    stats = encode_images(model, preprocess, dataset / "train.parquet", out, CPU, 7)
    ids, labels, features = read_features(out)
    assert stats["n_images"] == 30 and len(ids) == 30
    assert ids[:3] == ["img000", "img001", "img002"]
    assert labels.tolist() == [i % 6 for i in range(30)]
    assert np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5)
    image = Image.open(io.BytesIO(_png(4))).convert("RGB")
    with torch.inference_mode():
        single = F.normalize(model.encode_image(preprocess(image)[None]), dim=-1)
    assert np.allclose(features[4], single[0].numpy(), atol=1e-5)


def test_batched_classifier_equals_one_class_at_a_time(tiny_vit):
    model, _, tokenizer = tiny_vit
    names = ["cat", "dog", "car", "tree", "boat"]
    templates = ["a photo of a {c}.", "art of the {c}.", "{c}"]
    batched = build_classifier(model, tokenizer, names, templates, CPU, batch_size=7)
    columns = []
    with torch.inference_mode():
        for name in names:
            texts = tokenizer([t.replace("{c}", name) for t in templates])
            embedded = F.normalize(model.encode_text(texts), dim=-1).mean(0)
            columns.append(embedded / embedded.norm())
    assert batched.shape == (64, 5)
    assert torch.allclose(batched, torch.stack(columns, 1), atol=1e-5)


def test_prompt_sets_reuse_features_and_metrics_follow_predictions(
    tiny_vit, dataset, tmp_path
):
    model, preprocess, tokenizer = tiny_vit
    features = dataset / "features.parquet"
    encode_images(model, preprocess, dataset / "train.parquet", features, CPU, 16)
    (dataset / "train.parquet").unlink()  # prompt sets need the features only
    results = {}
    for name, prompt_set in {
        "study": {"templates": ["a photo of a {c}."], "classnames": "raw"},
        "curated": {"templates": ["{c}", "art of {c}"], "classnames": "curated"},
    }.items():
        predictions = tmp_path / f"{name}.parquet"
        metrics = tmp_path / f"{name}.json"
        results[name] = evaluate_zeroshot(
            model,
            tokenizer,
            features,
            dataset / "classes.json",
            prompt_set,
            predictions,
            metrics,
            CPU,
            bootstrap={"samples": 50, "seed": 0},
            info={"checkpoint": "tiny", "dataset": "toy", "prompts": name},
        )
        table = pq.read_table(predictions).to_pandas()
        assert list(table.columns) == ["sample_id", "label", "top5", "top5_scores"]
        top = np.stack(table["top5"].to_numpy())
        recomputed = zeroshot_metrics(top, table["label"].to_numpy(), 6)
        saved = json.loads(metrics.read_text())
        for key in ("acc1", "acc5", "mean_per_class_recall", "acc1_adjusted"):
            assert saved[key] == pytest.approx(recomputed[key])
        assert saved["n_templates"] == len(prompt_set["templates"])
        assert saved["acc1_low"] <= saved["acc1"] <= saved["acc1_high"]
        scores = np.stack(table["top5_scores"].to_numpy())
        assert (np.diff(scores, axis=1) <= 0).all()
    assert results["study"]["n_images"] == results["curated"]["n_images"] == 30
    csv = aggregate(sorted(tmp_path.glob("*.json")), tmp_path / "zeroshot.csv")
    assert sorted(csv["prompts"]) == ["curated", "study"]
    assert "per_class_recall" not in csv.columns


def test_dataset_templates_are_required_when_asked_for(tiny_vit, dataset, tmp_path):
    model, preprocess, tokenizer = tiny_vit
    features = dataset / "features.parquet"
    encode_images(model, preprocess, dataset / "train.parquet", features, CPU, 16)
    with pytest.raises(ValueError, match="ships none"):
        evaluate_zeroshot(
            model,
            tokenizer,
            features,
            dataset / "classes.json",
            {"templates": "dataset", "classnames": "raw"},
            tmp_path / "p.parquet",
            tmp_path / "m.json",
            CPU,
        )
    assert not (tmp_path / "p.parquet").exists()


def test_corrupt_image_fails_with_its_name_or_is_skipped(tiny_vit, tmp_path):
    model, preprocess, _ = tiny_vit
    rows = [("good", 0, _png(1)), ("broken", 1, _png(2)[:40])]
    write_samples(tmp_path / "s.parquet", rows)
    out = tmp_path / "f.parquet"
    with pytest.raises(ValueError, match="'broken'"):
        encode_images(model, preprocess, tmp_path / "s.parquet", out, CPU)
    assert not out.exists()
    stats = encode_images(
        model, preprocess, tmp_path / "s.parquet", out, CPU, on_corrupt="skip"
    )
    assert stats == {"n_images": 1, "skipped": 1, "seconds": stats["seconds"]}
    assert read_features(out)[0] == ["good"]


def test_decoded_cache_gives_the_features_and_metrics_of_per_image_decoding(
    tiny_checkpoints, dataset, tmp_path
):
    from clipstudy.decoded import cache_key, decode_split, preprocess_config
    from clipstudy.evaluate import encode_decoded

    path = str(tiny_checkpoints["tiny-vit"])
    model, preprocess, tokenizer = load_checkpoint(
        Checkpoint("tiny-vit", path), CPU, [MODEL_CONFIGS]
    )
    config = preprocess_config("tiny-vit", path)
    assert cache_key(config) == "64px-shortest-bicubic"
    images, index = tmp_path / "cache.npy", tmp_path / "cache.index.parquet"
    assert decode_split(dataset / "train.parquet", images, index, config) == 30
    assert np.load(images, mmap_mode="r").shape == (30, 64, 64, 3)
    cached = tmp_path / "cached.parquet"
    encode_decoded(model, images, index, cached, CPU, config["mean"], config["std"], 8)
    direct = tmp_path / "direct.parquet"
    encode_images(model, preprocess, dataset / "train.parquet", direct, CPU, 8)
    ids_a, labels_a, features_a = read_features(cached)
    ids_b, labels_b, features_b = read_features(direct)
    assert ids_a == ids_b and (labels_a == labels_b).all()
    assert np.abs(features_a - features_b).max() < 1e-5

    templates = ["a photo of a {c}.", "art of a {c}."]
    prompt_set = {"templates": templates, "classnames": "raw"}
    metrics = {}
    for name, features in (("cached", cached), ("direct", direct)):
        metrics[name] = evaluate_zeroshot(
            model,
            tokenizer,
            features,
            dataset / "classes.json",
            prompt_set,
            tmp_path / f"{name}.predictions.parquet",
            tmp_path / f"{name}.metrics.json",
            CPU,
            bootstrap={"samples": 50, "seed": 0},
        )
    for key in ("acc1", "acc5", "mean_per_class_recall", "per_class_recall"):
        assert metrics["cached"][key] == metrics["direct"][key], key
    top_a = pq.read_table(tmp_path / "cached.predictions.parquet").column("top5")
    top_b = pq.read_table(tmp_path / "direct.predictions.parquet").column("top5")
    assert top_a.to_pylist() == top_b.to_pylist()


def test_preprocessing_follows_the_pretrained_tag():
    from clipstudy.decoded import cache_key, preprocess_config

    laion = preprocess_config("ViT-L-14", "laion2b_s32b_b82k")
    openai = preprocess_config("ViT-L-14-quickgelu", "openai")
    assert laion["mean"] == (0.5, 0.5, 0.5)
    assert openai["mean"] != laion["mean"]
    assert cache_key(laion) == cache_key(openai) == "224px-shortest-bicubic"
    assert cache_key(preprocess_config("ViT-L-14-336-quickgelu", "openai")) == (
        "336px-shortest-bicubic"
    )
    assert preprocess_config("ViT-B-16-plus-240", "laion400m_e32")["size"] == 240


def test_decoded_cache_skips_corrupt_images_when_asked(tmp_path):
    from clipstudy.decoded import decode_split

    rows = [("a", 0, _png(1)), ("bad", 1, b"not an image"), ("c", 2, _png(3))]
    write_samples(tmp_path / "s.parquet", rows)
    config = {
        "size": 32,
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
        "fill_color": 0,
    }
    images, index = tmp_path / "c.npy", tmp_path / "c.index.parquet"
    with pytest.raises(ValueError, match="'bad'"):
        decode_split(tmp_path / "s.parquet", images, index, config)
    assert not images.exists()
    assert decode_split(tmp_path / "s.parquet", images, index, config, 0, "skip") == 2
    assert np.load(images).shape == (2, 32, 32, 3)
    assert pq.read_table(index).column("sample_id").to_pylist() == ["a", "c"]


def test_out_of_memory_halves_the_image_batch_and_keeps_the_features(
    tiny_vit, dataset, tmp_path, caplog
):
    model, preprocess, _ = tiny_vit
    encode = model.encode_image
    sizes = []

    def encode_or_run_out(pixels):
        sizes.append(len(pixels))
        if len(pixels) > 4:
            raise torch.cuda.OutOfMemoryError("simulated")
        return encode(pixels)

    samples = dataset / "train.parquet"
    encode_images(model, preprocess, samples, tmp_path / "full.parquet", CPU, 16)
    model.encode_image = encode_or_run_out
    try:
        with caplog.at_level("WARNING"):
            stats = encode_images(
                model, preprocess, samples, tmp_path / "small.parquet", CPU, 16
            )
    finally:
        del model.encode_image
    assert stats["n_images"] == 30
    assert sizes[:3] == [16, 8, 4] and max(sizes[3:]) == 4
    assert "image batch size lowered to 4" in caplog.text
    full = read_features(tmp_path / "full.parquet")[2]
    small = read_features(tmp_path / "small.parquet")[2]
    assert np.abs(full - small).max() < 1e-5
