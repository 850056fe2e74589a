import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.evaluate import aggregate

aggregate(snakemake.input.metrics, snakemake.output[0])
