"""The study report: tables, figures and one self-contained HTML page.

Modules: `settings` (the report: config section), `tables` (Tables 1-4 and the
rest from zeroshot.csv), `figures` (PNG and SVG), `provenance`, `explainability`
(relevance outputs) and `html` (the page). Import the one you need; this package
itself stays light so the workflow can read its names while planning jobs.
"""

from clipstudy.report.settings import FIGURE_NAMES, TABLE_NAMES, report_settings

__all__ = ["FIGURE_NAMES", "TABLE_NAMES", "report_settings"]
