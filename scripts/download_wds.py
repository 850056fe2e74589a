import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.datasets.wds import download_wds

mirror = snakemake.params.mirror
download_wds(
    mirror["name"],
    mirror["split"],
    mirror["revision"],
    snakemake.output[0],
    local_source=mirror["local_source"],
)
