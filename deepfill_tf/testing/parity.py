"""Oracle comparisons that say where outputs diverge, not just "not close"."""

from __future__ import annotations

import numpy as np
import pytest


def assert_parity(actual, expected, atol: float, what: str, *, rtol: float = 0.0) -> float:
    """Fail unless ``|actual - expected| <= atol + rtol * |expected|`` everywhere; returns the
    max abs error.

    The failure names the max and mean error and the first index beyond ``atol`` with both
    values. The max and mean error are also printed (visible with ``pytest -s``).
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.abs(actual.astype(np.float64) - expected)
    print(f"{what}: max abs error {err.max():.3g}, mean {err.mean():.3g}")
    bad = err > atol + rtol * np.abs(expected.astype(np.float64))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        pytest.fail(
            f"{what}: {int(bad.sum())}/{bad.size} values off; max error {err.max():.3g}"
            f" (atol {atol}, rtol {rtol}, mean {err.mean():.3g}), first bad index {first}:"
            f" got {actual[first]!r}, expected {expected[first]!r}"
        )
    return float(err.max())
