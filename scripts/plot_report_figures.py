import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from pathlib import Path

from clipstudy.report.figures import write_figures

figures = {}
for path in snakemake.output:
    figures.setdefault(Path(path).stem, []).append(path)
write_figures(snakemake.input.zeroshot, snakemake.params.settings, figures)
