"""Fixtures shared by the unit tests.

The test environment itself (offline Hugging Face settings inherited by every kernel, the Agg backend,
nbval's hooks) is set up by the repository's root conftest.py, which pytest loads before this file and
which also covers notebooks/. The assertion below makes sure it is in force.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    assert os.environ.get(_name) == "1", f"{_name} is not set: is the root conftest.py missing?"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def require_notebook():
    """``require_notebook("01_noise_to_image.ipynb")``: the notebook's path, or skip if it is not written yet."""

    def find(name: str) -> Path:
        path = NOTEBOOK_DIR / name
        if not path.is_file():
            pytest.skip(f"notebooks/{name} does not exist yet")
        return path

    return find
