import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.miniplaces import download_miniplaces

source = snakemake.params.source
download_miniplaces(
    source["url"],
    os.path.dirname(snakemake.output.archive),
    sha256=source["sha256"],
    md5=source["md5"],
    devkit_url=source["devkit_url"],
)
