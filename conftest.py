"""pytest configuration for the whole repository: the unit tests in tests/ and the notebooks in notebooks/.

This file is at the repository root, not in tests/, on purpose: pytest applies a conftest.py only to
the directory it sits in and below, and the nbval hooks here must reach notebooks/. Shared fixtures
for the unit tests are in tests/conftest.py.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOK_NAME = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")

# Set at import, before any kernel starts. Kernels started by nbval, nbclient and papermill inherit this
# process's environment, so no notebook can reach the Hugging Face Hub during the tests.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
os.environ.update(OFFLINE_ENV)

# Figures drawn by the unit tests themselves go to the non-interactive Agg backend. This is deliberately
# not done with MPLBACKEND=Agg in os.environ: kernels would inherit it, and ipykernel only selects the
# inline backend when MPLBACKEND is unset, so the notebooks would lose their figures under test.
import matplotlib  # noqa: E402

matplotlib.use("Agg")


def pytest_configure(config):
    """Resolve the nbval sanitizer file (given relative in pyproject.toml) against the repository root,
    so that pytest works from any working directory."""
    path = getattr(config.option, "nbval_sanitize_with", None)
    if path and not os.path.isabs(path):
        config.option.nbval_sanitize_with = str(config.rootpath / path)


def pytest_ignore_collect(collection_path: Path, config):
    """Collect only the course notebooks, ``notebooks/NN_name.ipynb``.

    Other .ipynb files (nbgrader's source/ release/ student/ trees, checkpoints, scratch notebooks) are
    not executed as tests when pytest collects a directory, the repository root included. (A notebook
    named explicitly on the command line is still run: pytest does not ask this hook about those.)
    """
    if collection_path.suffix == ".ipynb":
        if collection_path.parent != NOTEBOOK_DIR or not NOTEBOOK_NAME.match(collection_path.name):
            return True
    return None


def pytest_collectstart(collector):
    """nbval: never compare stderr in checked cells (tqdm bars and warnings write there)."""
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        if hasattr(collector, "skip_compare"):
            collector.skip_compare = tuple(collector.skip_compare) + ("stderr",)
