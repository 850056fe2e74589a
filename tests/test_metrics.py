import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clipstudy.metrics import bootstrap_intervals, zeroshot_metrics

REPO = Path(__file__).resolve().parent.parent
CB_PYTHON = REPO / ".venv-cb" / "bin" / "python"

# Runs CLIP_benchmark's own evaluate() on given image and text features, in the
# side environment where clip-benchmark 1.6.2 works (numpy < 2.4).
CB_SCRIPT = """
import json, sys
import numpy as np, torch
from clip_benchmark.metrics.zeroshot_classification import evaluate

data = np.load(sys.argv[1])
images, texts = torch.from_numpy(data["images"]), torch.from_numpy(data["texts"])
labels = torch.from_numpy(data["labels"])

class Model:
    def encode_image(self, index):
        return images[index]
    def encode_text(self, index):
        return texts[index]

class Data(torch.utils.data.Dataset):
    classes = list(range(texts.shape[0]))
    def __len__(self):
        return len(labels)
    def __getitem__(self, i):
        return i, labels[i]

loader = torch.utils.data.DataLoader(Data(), batch_size=7)
tokenizer = lambda prompts: torch.tensor([int(p) for p in prompts])
metrics = evaluate(Model(), loader, tokenizer, [str(i) for i in range(texts.shape[0])],
                   ["{c}"], "cpu", amp=False)
print(json.dumps(metrics))
"""


def _ours(images, texts, labels):
    logits = 100 * _unit(images) @ _unit(texts).T
    top = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    return zeroshot_metrics(top, labels, texts.shape[0])


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.skipif(
    not CB_PYTHON.exists(),
    reason="CLIP_benchmark's side environment .venv-cb is missing; "
    "create it with benchmarks/setup_clip_benchmark_env.sh",
)
@pytest.mark.parametrize("n_classes", [3, 5, 12])
def test_metrics_equal_clip_benchmark(tmp_path, n_classes):
    rng = np.random.default_rng(n_classes)
    images = rng.standard_normal((60, 8)).astype(np.float32)
    texts = rng.standard_normal((n_classes, 8)).astype(np.float32)
    # leave the last class without samples: per-class recall skips it
    labels = rng.integers(0, n_classes - 1, size=60)
    np.savez(tmp_path / "case.npz", images=images, texts=texts, labels=labels)
    script = tmp_path / "cb.py"
    script.write_text(CB_SCRIPT)
    run = subprocess.run(
        [str(CB_PYTHON), "-W", "ignore", str(script), str(tmp_path / "case.npz")],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    ours = _ours(images, texts, labels)
    assert ours["acc1"] == pytest.approx(theirs["acc1"], abs=1e-12)
    assert ours["mean_per_class_recall"] == pytest.approx(
        theirs["mean_per_class_recall"], abs=1e-12
    )
    if n_classes < 5:
        assert ours["acc5"] is None and np.isnan(theirs["acc5"])
    else:
        assert ours["acc5"] == pytest.approx(theirs["acc5"], abs=1e-12)


def test_metrics_on_hand_made_predictions():
    labels = np.array([0, 0, 1, 1, 1, 2])
    top = np.array([[0, 1, 2], [1, 0, 2], [1, 2, 0], [1, 0, 2], [0, 2, 1], [2, 1, 0]])
    metrics = zeroshot_metrics(top, labels, 3)
    assert metrics["acc1"] == pytest.approx(4 / 6)
    assert metrics["acc5"] is None
    assert metrics["per_class_recall"] == pytest.approx([0.5, 2 / 3, 1.0])
    assert metrics["mean_per_class_recall"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert metrics["acc1_adjusted"] == pytest.approx(4 / 6 - 1 / 3)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=400)
    top1 = np.where(rng.random(400) < 0.7, labels, (labels + 1) % 4)
    first = bootstrap_intervals(top1, labels, 4, samples=200, seed=3)
    again = bootstrap_intervals(top1, labels, 4, samples=200, seed=3)
    other = bootstrap_intervals(top1, labels, 4, samples=200, seed=4)
    assert first == again
    assert first != other
    acc1 = (top1 == labels).mean()
    assert first["acc1_low"] < acc1 < first["acc1_high"]
    assert first["acc1_high"] - first["acc1_low"] < 0.15
    assert first["mean_per_class_recall_low"] < first["mean_per_class_recall_high"]
