import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.wds import export_wds_classes

export_wds_classes(snakemake.input[0], os.path.dirname(snakemake.output[0]))
