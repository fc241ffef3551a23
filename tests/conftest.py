"""Shared fixtures: the oracle folders of ../shared, skipped with a reason when absent."""

from __future__ import annotations

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("DEEPFILL_SHARED", REPO.parent / "shared"))


def oracle_path(name: str) -> pathlib.Path:
    """Folder ``../shared/oracles/<name>``; skips the calling test if it is not there."""
    path = SHARED / "oracles" / name
    if not path.is_dir():
        pytest.skip(
            f"oracle tensors {path} not present (they ship with CI's ../shared, not with a clone;"
            " set DEEPFILL_SHARED to point elsewhere)"
        )
    return path


@pytest.fixture
def oracles():
    """``oracles('deepfill_v2')`` -> pathlib.Path of that oracle folder (or skip)."""
    return oracle_path
