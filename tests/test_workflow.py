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
import yaml
from browser import check_in_browser, needs_chromium

from clipstudy import smoke
from clipstudy.report.html import SECTIONS

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
    # one decoded-image cache per split for the eleven 224 px checkpoints (and the
    # three of Miniplaces); the 240 and 336 px checkpoints stream their splits
    assert int(counts["decode_images"]) == 52 + 2
    # TFDS with three prompt sets (benchmark, study, curated), the rest with one
    assert int(counts["evaluate_zeroshot"]) == 13 * (17 * 3 + 35) + 3 * 4
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


@pytest.fixture(scope="module")
def smoke_config(smoke_study) -> dict:
    return yaml.safe_load((smoke_study / "config.yaml").read_text())


@pytest.mark.slow
def test_smoke_study_scores_every_pair(smoke_study):
    table = pd.read_csv(smoke_study / "results/tables/zeroshot.csv")
    expected = {
        ("tfds-cassava", "benchmark"): 3, ("tfds-cassava", "study"): 3,
        ("tfds-cassava", "curated"): 3,
        ("miniplaces", "study"): 3, ("wds-vtab-cifar10", "benchmark"): 3,
        ("wds-cifar10-shifted", "benchmark"): 2,
    }  # fmt: skip
    pairs = table.groupby(["dataset", "prompts"]).size().to_dict()
    assert pairs == expected
    assert table["acc1"].between(0, 1).all()
    assert (table["acc1_low"] <= table["acc1"]).all()
    cassava = table[table["dataset"] == "tfds-cassava"]
    assert (cassava["acc1_adjusted"] == cassava["acc1"] - 1 / 5).all()
    assert (cassava["split"] == "train").all()
    # CLIP_benchmark prompts TFDS datasets it has no templates for with CLIP's 80
    assert (cassava.set_index("prompts")["n_templates"].loc["benchmark"] == 80).all()
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
def test_smoke_study_renders_every_relevance_experiment(smoke_study, smoke_config):
    results = smoke_study / "results/relevance"
    relevance = smoke_config["relevance"]
    for name in relevance["experiments"]:
        for kind in ("grid.png", "tokens.png", "tokens.html"):
            path = results / "figures" / f"{name}.{kind}"
            assert path.is_file() and path.stat().st_size > 0, path
    localisation = relevance["localisation"]["checkpoints"]
    summary = pd.read_csv(results / "localisation_summary.csv")
    assert sorted(summary["checkpoint"]) == sorted(localisation)
    # one row per map: (experiment, checkpoint, image, prompt)
    expected = {
        (name, model, image, prompt)
        for name, spec in relevance["experiments"].items()
        for model in spec["checkpoints"]
        for image in spec["images"]
        for prompt in spec["prompts"]
    }
    scores = pd.read_csv(results / "scores.csv")
    keys = ["experiment", "checkpoint", "image", "prompt"]
    assert len(scores) == len(expected)
    assert set(scores[keys].itertuples(index=False, name=None)) == expected


@pytest.mark.slow
def test_smoke_report_shows_every_section_with_its_numbers(smoke_study):
    html = (smoke_study / "results/report.html").read_text()
    assert smoke.BANNER in html
    for _, section in SECTIONS:
        assert f"<h2>{section.replace('&', '&amp;')}</h2>" in html, section
    assert 'src="http' not in html
    # the comparison ran on shipped published numbers, Miniplaces included
    assert re.search(r"<b>[1-9]\d*</b>cells compared", html)
    comparison = pd.read_csv(smoke_study / "results/tables/published_comparison.csv")
    assert {"Table 1", "Table 3", "Miniplaces"} <= set(comparison["table"])
    assert not comparison.loc[comparison["table"] == "Miniplaces", "flagged"].any()
    # effective robustness was built from the two WebDataset mirrors
    assert 'id="table-robustness"' in html
    robustness = pd.read_csv(smoke_study / "results/tables/robustness.csv")
    assert len(robustness) == 2
    for missing in (
        "No reproduced cell has a published counterpart",
        "was not built in this run",
        "Skipped:",
        "No relevance maps in this run.",
        "No leaderboard files in this run.",
    ):
        assert missing not in html, missing


@pytest.mark.slow
@needs_chromium
def test_smoke_report_renders_in_a_browser(smoke_study, tmp_path):
    page = smoke_study / "results/report.html"
    shots = check_in_browser(page, tmp_path, [key for key, _ in SECTIONS])
    assert [shot.name for shot in shots] == ["report-laptop.png", "report-phone.png"]


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
