"""Helpers shared by the CLI tests: run ``deepfill-tf`` in-process, expect one-line errors."""

from __future__ import annotations

import numpy as np
from PIL import Image

from deepfill_tf.cli.main import main


def run(capsys, *args):
    """``deepfill-tf ARGS`` in-process: (exit code, stdout, stderr)."""
    code = main([*map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys, *args) -> str:
    """Run and assert exit 1 with exactly one stderr line and no traceback; return the line."""
    code, _, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 1, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def read(path):
    """An image file as an (H, W, 3) int array (RGB)."""
    return np.asarray(Image.open(path).convert("RGB")).astype(int)
