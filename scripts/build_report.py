import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from pathlib import Path

from clipstudy.report.html import build_report

build_report(
    snakemake.output[0],
    snakemake.input.zeroshot,
    snakemake.params.config,
    tables={Path(path).stem: path for path in snakemake.input.tables},
    figures={Path(path).stem: path for path in snakemake.input.figures},
    relevance=snakemake.input.relevance,
    leaderboards=snakemake.input.leaderboards,
    checkpoint_files=snakemake.input.checkpoints,
    benchmarks_dir=snakemake.params.benchmarks,
)
