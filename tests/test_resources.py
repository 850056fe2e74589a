"""Job sizes: memory, wall time and threads grow with checkpoint and dataset."""

import open_clip
import pytest

from clipstudy import resources
from clipstudy.data import write_samples
from clipstudy.tiny import MODEL_CONFIGS


@pytest.fixture(scope="module", autouse=True)
def tiny_configs():
    open_clip.add_model_config(MODEL_CONFIGS)


def test_bigger_checkpoints_ask_for_more_memory_and_time():
    sizes = ["tiny-vit", "ViT-B-32", "ViT-L-14", "ViT-g-14"]
    for step in resources.STEPS:
        mem = [resources.gpu_mem_mb(step, m, 50_000, threads=4) for m in sizes]
        time = [resources.gpu_runtime(step, m, 50_000, threads=4) for m in sizes]
        assert mem == sorted(mem) and len(set(mem)) == len(mem), (step, mem)
        assert time == sorted(time), (step, time)
    # the largest image tower needs well over twice the smallest study model
    big = resources.gpu_mem_mb("encode", "ViT-g-14", 50_000, threads=4)
    small = resources.gpu_mem_mb("encode", "ViT-B-32", 50_000, threads=4)
    assert big > 2 * small
    assert resources.gpu_runtime("encode", "ViT-g-14", 50_000, 4) >= 4 * (
        resources.gpu_runtime("encode", "ViT-B-32", 50_000, 4)
    )


def test_more_images_take_longer_and_retries_ask_for_more():
    short = resources.gpu_runtime("encode", "ViT-L-14", 1_000, threads=4)
    long = resources.gpu_runtime("encode", "ViT-L-14", 100_000, threads=4)
    assert long > short
    once = resources.gpu_mem_mb("evaluate", "ViT-L-14", 10_000, attempt=1)
    twice = resources.gpu_mem_mb("evaluate", "ViT-L-14", 10_000, attempt=2)
    assert twice >= 2 * once - 500
    assert resources.cpu_runtime(10_000, attempt=3) > resources.cpu_runtime(10_000)


def test_tiny_models_are_small_and_quickgelu_changes_nothing():
    tiny = resources.tower_size("tiny-vit")
    assert tiny.image_mparams < 1 and tiny.image_gflops < 0.1
    assert resources.tower_size("tiny-rn").image_mparams < 1
    assert resources.tower_size("ViT-B-16-quickgelu") == resources.tower_size(
        "ViT-B-16"
    )
    assert resources.gpu_mem_mb("encode", "tiny-vit", 100, threads=2) <= 4_000


@pytest.mark.parametrize("model", ["ViT-B-32", "ViT-L-14", "RN50", "RN101"])
def test_estimate_from_config_is_within_a_factor_two_of_the_table(model):
    estimate = resources.estimate_tower_size(open_clip.get_model_config(model))
    table = resources.TOWER_SIZES[model]
    assert 0.5 < estimate.image_mparams / table.image_mparams < 2
    assert 0.5 < estimate.total_mparams / table.total_mparams < 2
    assert 0.5 < estimate.image_gflops / table.image_gflops < 2


def test_unknown_model_and_step_are_refused():
    with pytest.raises(ValueError, match="unknown open_clip model"):
        resources.tower_size("ViT-Q-99")
    with pytest.raises(ValueError, match="choose one of"):
        resources.gpu_mem_mb("train", "ViT-B-32", 10)


def test_split_size_counts_the_prepared_split_else_config_else_default(tmp_path):
    prepared = tmp_path / "test.parquet"
    assert resources.split_images({}, prepared) == resources.DEFAULT_IMAGES
    assert resources.split_images({"images": 1234}, prepared) == 1234
    write_samples(prepared, [(f"s{i}", 0, b"x") for i in range(7)])
    assert resources.split_images({"images": 1234}, prepared) == 7
    with pytest.raises(ValueError, match="positive whole number"):
        resources.split_images({"images": 0})


def test_loader_threads_grow_with_the_split_within_bounds():
    assert resources.loader_threads(10) == 2
    assert resources.loader_threads(50_000) == 6
    assert resources.loader_threads(10_000_000) == 8
