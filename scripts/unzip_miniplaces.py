import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.miniplaces import unzip_miniplaces

unzip_miniplaces(snakemake.input[0], snakemake.output[0])
