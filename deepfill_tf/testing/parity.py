"""Oracle comparisons that say where outputs diverge, not just "not close"."""

from __future__ import annotations

import numpy as np
import pytest


def assert_parity(actual, expected, atol: float, what: str) -> float:
    """Fail unless ``|actual - expected| <= atol`` everywhere; returns the max abs error.

    The failure names the max and mean error and the first index beyond ``atol`` with both
    values. The max and mean error are also printed (visible with ``pytest -s``).
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.abs(actual.astype(np.float64) - expected)
    print(f"{what}: max abs error {err.max():.3g}, mean {err.mean():.3g}")
    if err.max() > atol:
        first = tuple(int(i) for i in np.argwhere(err > atol)[0])
        pytest.fail(
            f"{what}: max error {err.max():.3g} > {atol} (mean {err.mean():.3g}), first bad"
            f" index {first}: got {actual[first]!r}, expected {expected[first]!r}"
        )
    return float(err.max())
