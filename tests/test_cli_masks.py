"""``deepfill-tf masks``: reproducible PNG masks, file names, values, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.cli.main import main
from deepfill_tf.masks import BoxParams, random_mask


def _run(out, *extra, kind="both", size=(48, 64), count=3, seed=0):
    argv = ["masks", "--kind", kind, "--size", *map(str, size), "--count", str(count)]
    return main([*argv, "--seed", str(seed), "--output-dir", str(out), *extra])


def _read_all(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_files(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert _run(a, seed=5) == 0
    assert _run(b, seed=5) == 0
    assert _run(c, seed=6) == 0
    files_a, files_b, files_c = _read_all(a), _read_all(b), _read_all(c)
    assert list(files_a) == ["mask_00000.png", "mask_00001.png", "mask_00002.png"]
    assert files_a == files_b
    assert files_a.keys() == files_c.keys() and files_a != files_c
    # writing again over existing files gives the same bytes and leaves no temporary file
    assert _run(a, seed=5) == 0 and _read_all(a) == files_b


@pytest.mark.parametrize("kind", ["box", "free_form", "both"])
def test_png_content_is_the_library_mask(tmp_path, kind):
    assert _run(tmp_path, kind=kind, size=(48, 64), count=2, seed=3) == 0
    rng = np.random.RandomState(3)
    for i in range(2):
        png = Image.open(tmp_path / f"mask_{i:05d}.png")
        assert png.mode == "L" and png.size == (64, 48)
        pixels = np.asarray(png)
        assert set(np.unique(pixels)) <= {0, 255}
        expected = random_mask(kind, (48, 64), rng=rng, box=BoxParams.for_image(48, 64))
        np.testing.assert_array_equal(pixels == 255, expected[0, :, :, 0] == 1)


def test_box_options(tmp_path):
    assert _run(tmp_path, "--box-size", "20", "30", "--max-delta", "0", "0", kind="box") == 0
    for p in tmp_path.iterdir():
        rows, cols = np.nonzero(np.asarray(Image.open(p)))
        assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 == 30


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--count", "0"], "--count must be at least 1"),
        (["--size", "0", "64"], "--size must be positive"),
        (["--box-size", "48", "48", "--kind", "box"], "does not fit"),
        (["--margins", "-1", "0"], "must not be negative"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, extra, message):
    argv = ["masks", "--size", "48", "64", "--output-dir", str(tmp_path / "out"), *extra]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("deepfill-tf masks: error: ") and message in err
    assert err.count("\n") == 1


def test_output_dir_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file.png"
    target.write_bytes(b"x")
    assert _run(target) == 1
    err = capsys.readouterr().err
    assert "exists and is not a folder" in err and err.count("\n") == 1
