import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.data import write_json
from clipstudy.datasets.tfds import download_and_prepare

record = download_and_prepare(**snakemake.params.tfds)
write_json(snakemake.output[0], record)
