"""Logging set-up shared by the workflow's rule scripts."""

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO) -> None:
    """Send log records to stderr, which a rule script has pointed at its log file."""
    logging.basicConfig(stream=sys.stderr, level=level, format=FORMAT, force=True)
    logging.captureWarnings(True)
