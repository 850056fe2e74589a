import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.relevance_scores import aggregate_localisation

aggregate_localisation(
    snakemake.input, snakemake.output.table, snakemake.output.summary
)
