"""Static HTML report of a sweep: summary, figures, ranked trials and failures.

``spiketune report RUN_DIR`` and the end of ``spiketune run`` call
:func:`write_report`. The output folder contains ``index.html`` and its PNG
figures; it opens from disk in any browser, with no server and no network.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from spiketune.report.data import RunData, load_run
from spiketune.report.figures import FIGURE_FILES, FigureResult, write_figures
from spiketune.report.importance import Importance, param_importances
from spiketune.report.page import render_page

__all__ = [
    "FIGURE_FILES",
    "FigureResult",
    "Importance",
    "RunData",
    "load_run",
    "param_importances",
    "write_report",
]

logger = logging.getLogger(__name__)

INDEX_FILE = "index.html"


def write_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the HTML report of a finished or interrupted run.

    Parameters
    ----------
    run_dir : str or Path
        Run directory holding ``sweep.json`` and one folder per trial.
    out_dir : str or Path, optional
        Folder for ``index.html`` and the figures; ``RUN_DIR/report`` when
        omitted. It is created if missing, and earlier report files in it
        are overwritten.

    Returns
    -------
    Path
        Path of the written ``index.html``.

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` has no ``sweep.json``.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "report"
    run = load_run(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    importance = param_importances(run.table, run.params, run.objective, run.mode)
    figures = write_figures(run, importance, out)
    page = render_page(run, figures, importance, out)
    index = out / INDEX_FILE
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(index)
    logger.info(
        "report of %s (%d trials) written to %s in %.1f s",
        run_dir,
        len(run.table),
        index,
        time.perf_counter() - started,
    )
    return index
