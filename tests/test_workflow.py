"""The workflow end to end: the full study's plan, bad config, the smoke study."""

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from clipstudy import smoke

REPO = Path(__file__).resolve().parent.parent


def snakemake(*args: str, cwd: Path = REPO, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )


def test_full_study_plans_every_job_offline(tmp_path):
    run = snakemake(
        "-n", "--quiet", "rules", "--cores", "2", "--directory", str(tmp_path),
        "--snakefile", str(REPO / "Snakefile"), "--configfile",
        str(REPO / "config.yaml"), "--workflow-profile", "none",
        env=smoke.offline_environment(tmp_path),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.MULTILINE))
    assert int(counts["encode_images"]) == 13 * 52 + 3 * 2
    assert int(counts["evaluate_zeroshot"]) == 13 * (17 * 2 + 35) + 3 * 4
    assert int(counts["download_tfds"]) == 17
    assert int(counts["download_wds"]) == 35
    assert int(counts["download_miniplaces"]) == 1
    assert int(counts["fetch_checkpoint"]) == 15
    assert int(counts["write_miniplaces_submission"]) == 6
    assert int(counts["build_report"]) == 1


def test_bad_config_stops_before_any_job_with_one_line(tmp_path):
    config = (REPO / "config.yaml").read_text()
    config = config.replace("  batch_size: 256", "  batch_sise: 256", 1)
    (tmp_path / "config.yaml").write_text(config)
    run = snakemake(
        "--cores", "1", "--directory", str(tmp_path),
        "--snakefile", str(REPO / "Snakefile"), "--workflow-profile", "none",
        env=smoke.offline_environment(tmp_path),
    )  # fmt: skip
    assert run.returncode != 0
    output = run.stdout + run.stderr
    lines = [line for line in output.splitlines() if "invalid config" in line]
    assert lines == [
        "invalid config: config key evaluation: unknown key(s) batch_sise; allowed "
        "keys are batch_size, bootstrap_samples, bootstrap_seed, confidence, device, "
        "keep_decoded, on_corrupt_image, text_batch_size"
    ]
    assert not (tmp_path / "results").exists()


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory) -> Path:
    """The offline smoke study, run once for the tests below."""
    output = tmp_path_factory.mktemp("smoke")
    assert smoke.run(output, cores=2) == 0, "the smoke study failed; see its logs"
    return output


@pytest.mark.slow
def test_smoke_study_scores_every_pair(smoke_study):
    table = pd.read_csv(smoke_study / "results/tables/zeroshot.csv")
    expected = {
        ("tfds-cassava", "study"), ("tfds-cassava", "curated"),
        ("miniplaces", "study"), ("wds-vtab-cifar10", "benchmark"),
    }  # fmt: skip
    assert set(zip(table["dataset"], table["prompts"], strict=True)) == expected
    assert len(table) == 3 * len(expected)
    assert table["acc1"].between(0, 1).all()
    assert (table["acc1_low"] <= table["acc1"]).all()
    cassava = table[table["dataset"] == "tfds-cassava"]
    assert (cassava["acc1_adjusted"] == cassava["acc1"] - 1 / 5).all()
    assert (cassava["split"] == "train").all()
    for path in table["predictions"]:
        predictions = pq.read_table(smoke_study / path)
        assert predictions.column_names[:3] == ["sample_id", "label", "top5"]


@pytest.mark.slow
def test_smoke_study_miniplaces_submission_has_the_official_formats(smoke_study):
    folder = smoke_study / "results/miniplaces/tiny-vit_seed0/study"
    lines = (folder / "submission_top5.txt").read_text().splitlines()
    assert len(lines) == 20
    assert lines[0].startswith("test/00000001.jpg ")
    assert all(re.fullmatch(r"test/\d{8}\.jpg( \d+){5}", line) for line in lines)
    leaderboard = pd.read_csv(folder / "leaderboard.csv", dtype=str)
    assert list(leaderboard.columns) == ["Id", "Category"]
    assert leaderboard["Id"].iloc[0] == "00000001"
    top1 = [line.split()[1] for line in lines]
    assert leaderboard["Category"].tolist() == top1


@pytest.mark.slow
def test_smoke_study_renders_relevance_and_report(smoke_study):
    results = smoke_study / "results"
    assert (results / "relevance/figures/portrait.grid.png").stat().st_size > 0
    scores = pd.read_csv(results / "relevance/scores.csv")
    assert len(scores) == 3 * 2 + 2 * 2
    html = (results / "report.html").read_text()
    assert "random weights" in html
    for section in ("Benchmarks", "Miniplaces", "Explainability", "published"):
        assert section in html
    assert 'src="http' not in html


@pytest.mark.slow
def test_smoke_study_metrics_record_where_they_ran(smoke_study):
    metrics = next((smoke_study / "results/metrics").rglob("*.json"))
    record = json.loads(metrics.read_text())
    assert record["provenance"]["encoding"]["device"] == "cpu"
    assert record["provenance"]["encoding"]["precision"] == "float32"
    assert record["seconds_encode"] > 0


@pytest.mark.slow
def test_smoke_study_rerun_has_nothing_to_do_and_builds_snakemake_report(
    smoke_study,
):
    again = snakemake(
        *smoke.snakemake_command(smoke_study, 2, ["-n"])[3:],
        env=smoke.offline_environment(smoke_study),
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing to be done" in again.stdout + again.stderr
    archive = smoke_study / "report.zip"
    report = snakemake(
        *smoke.snakemake_command(smoke_study, 2, ["--report", str(archive)])[3:],
        env=smoke.offline_environment(smoke_study),
    )
    assert report.returncode == 0, report.stdout + report.stderr
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
    assert any(name.endswith("zeroshot.csv") for name in names)
