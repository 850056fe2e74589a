import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from pathlib import Path

from clipstudy.report.tables import write_tables

write_tables(
    snakemake.input.zeroshot,
    snakemake.params.settings,
    {Path(path).stem: path for path in snakemake.output},
)
