"""`deepfill-tf demo` (what `make demo` runs) on the bundled model and example."""

from __future__ import annotations

import pathlib
import re

import numpy as np
from PIL import Image

from deepfill_tf.cli.main import main

MIN_GAIN_DB = 4.0  # measured 15.16 vs 9.48 dB: see checkpoints/README.md
EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples" / "demo"


def test_demo_writes_result_and_side_by_side(tmp_path, capsys):
    assert main(["demo", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "DeepFill v2 (cnum 12)" in out
    psnr = re.search(r"hole PSNR: model ([\d.]+) dB, flat fill ([\d.]+) dB", out)
    model_db, flat_db = float(psnr[1]), float(psnr[2])
    # the shipped model must beat a flat fill clearly on the held-out photo
    assert model_db >= flat_db + MIN_GAIN_DB, (model_db, flat_db)
    result = np.asarray(Image.open(tmp_path / "coffee_inpainted.png"))
    grid = np.asarray(Image.open(tmp_path / "coffee_side_by_side.png"))
    image = np.asarray(Image.open(EXAMPLES / "coffee.png").convert("RGB"))
    hole = np.asarray(Image.open(EXAMPLES / "coffee_mask.png"))[..., None].repeat(3, -1) > 127
    assert result.shape == image.shape and grid.shape == (128, 3 * 128 + 8, 3)
    np.testing.assert_array_equal(result[~hole], image[~hole])
    np.testing.assert_array_equal(grid[:, -128:], result)
