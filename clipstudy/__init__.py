"""clipstudy: a reproducible study of zero-shot CLIP checkpoints."""

__version__ = "0.1.0"
