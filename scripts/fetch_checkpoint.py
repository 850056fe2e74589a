import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from clipstudy.logs import setup_logging

setup_logging()

from clipstudy.data import write_json
from clipstudy.models import Checkpoint, fetch_checkpoint, register_model_configs

register_model_configs(snakemake.params.model_configs)
spec = snakemake.params.checkpoint
info = fetch_checkpoint(Checkpoint(spec["model"], spec["pretrained"]))
write_json(snakemake.output[0], {"id": snakemake.wildcards.model, **spec, **info})
