"""`deepfill-tf inpaint` end to end on a tiny checkpoint in the original TF1 layout."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.cli.main import main
from deepfill_tf.convert import tf1_variable_table, write_tf1_checkpoint
from deepfill_tf.models.deepfill_generator import DeepFillV1Generator, DeepFillV2Generator

RNG = np.random.default_rng(3)


def _write_checkpoint(model, directory):
    model.build_for(64, 64)
    for v in model.weights:  # non-trivial weights so outputs depend on them
        v.assign(RNG.normal(0, 0.2, v.shape).astype("float32"))
    write_tf1_checkpoint(
        {k: v.numpy() for k, v in tf1_variable_table(model).items()}, str(directory)
    )
    return str(directory)


@pytest.fixture(scope="module")
def v2_ckpt(tmp_path_factory):
    return _write_checkpoint(DeepFillV2Generator.tiny(), tmp_path_factory.mktemp("v2"))


@pytest.fixture(scope="module")
def v1_ckpt(tmp_path_factory):
    return _write_checkpoint(DeepFillV1Generator.tiny(), tmp_path_factory.mktemp("v1"))


def _image(path, h=70, w=50, mode="RGB"):
    array = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(path)
    return np.asarray(Image.open(path).convert("RGB"))


def _mask(path, h=70, w=50, box=(20, 10, 45, 35)):
    array = np.zeros((h, w), np.uint8)
    if box:
        array[box[0] : box[2], box[1] : box[3]] = 255
    Image.fromarray(array).save(path)
    return array > 127


def run_cli(capsys, *args):
    code = main(["inpaint", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_single_image_keeps_size_and_known_pixels(tmp_path, capsys, v2_ckpt):
    image = _image(tmp_path / "in.png")
    hole = _mask(tmp_path / "m.png")
    code, _, err = run_cli(
        capsys,
        "--checkpoint",
        v2_ckpt,
        "--image",
        tmp_path / "in.png",
        "--mask",
        tmp_path / "m.png",
        "--output",
        tmp_path / "out.png",
    )
    assert code == 0, err
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert np.any(out[hole] != image[hole])


def test_empty_mask_returns_input_and_full_mask_still_works(tmp_path, capsys, v1_ckpt):
    image = _image(tmp_path / "in.png", 64, 64)
    _mask(tmp_path / "empty.png", 64, 64, box=None)
    _mask(tmp_path / "full.png", 64, 64, box=(0, 0, 64, 64))
    base = ["--checkpoint", v1_ckpt, "--image", tmp_path / "in.png"]
    assert (
        run_cli(capsys, *base, "--mask", tmp_path / "empty.png", "--output", tmp_path / "a.png")[0]
        == 0
    )
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), image)
    assert (
        run_cli(capsys, *base, "--mask", tmp_path / "full.png", "--output", tmp_path / "b.png")[0]
        == 0
    )
    assert np.asarray(Image.open(tmp_path / "b.png")).shape == (64, 64, 3)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "LA"])
def test_image_modes_are_converted(tmp_path, capsys, v2_ckpt, mode):
    array = RNG.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    if mode == "I;16":
        image = Image.fromarray(array[..., 0].astype(np.uint16) * 257)
    else:
        image = image.convert(mode)
    image.save(tmp_path / "in.png")
    _mask(tmp_path / "m.png", 40, 48, box=(5, 5, 20, 20))
    code, _, err = run_cli(
        capsys,
        "--checkpoint",
        v2_ckpt,
        "--image",
        tmp_path / "in.png",
        "--mask",
        tmp_path / "m.png",
        "--output",
        tmp_path / "out.png",
    )
    assert code == 0, err
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (40, 48, 3)


def _bad_cases(tmp):
    _image(tmp / "ok.png")
    _mask(tmp / "ok_mask.png")
    _mask(tmp / "small_mask.png", 8, 8)
    _image(tmp / "small.png", 8, 8)
    _mask(tmp / "other_size.png", 60, 50)
    (tmp / "garbage.png").write_bytes(b"this is not a png")
    data = (tmp / "ok.png").read_bytes()
    (tmp / "truncated.png").write_bytes(data[: len(data) // 2])
    os.mkdir(tmp / "a_dir")
    return {
        "missing image": (
            ["--image", tmp / "nope.png", "--mask", tmp / "ok_mask.png"],
            "no such file",
        ),
        "missing mask": (["--image", tmp / "ok.png", "--mask", tmp / "nope.png"], "no such file"),
        "directory": (["--image", tmp / "a_dir", "--mask", tmp / "ok_mask.png"], "is a directory"),
        "not an image": (
            ["--image", tmp / "garbage.png", "--mask", tmp / "ok_mask.png"],
            "not an image",
        ),
        "truncated": (
            ["--image", tmp / "truncated.png", "--mask", tmp / "ok_mask.png"],
            "cannot decode",
        ),
        "size mismatch": (
            ["--image", tmp / "ok.png", "--mask", tmp / "other_size.png"],
            "mask is 50x60 but the image is 50x70",
        ),
        "too small": (
            ["--image", tmp / "small.png", "--mask", tmp / "small_mask.png"],
            "smallest size",
        ),
    }


def test_bad_inputs_give_one_line_errors_and_no_output(tmp_path, capsys, v2_ckpt):
    for name, (args, message) in _bad_cases(tmp_path).items():
        out = tmp_path / f"out_{name.replace(' ', '_')}.png"
        code, _, err = run_cli(capsys, "--checkpoint", v2_ckpt, *args, "--output", out)
        assert code == 1, name
        assert message in err, (name, err)
        assert err.count("\n") == 1 and err.startswith("deepfill-tf inpaint: error:"), err
        assert not out.exists(), name


def test_existing_output_survives_a_failure(tmp_path, capsys, v2_ckpt):
    (tmp_path / "out.png").write_bytes(b"previous result")
    code, _, _ = run_cli(
        capsys,
        "--checkpoint",
        v2_ckpt,
        "--image",
        tmp_path / "missing.png",
        "--mask",
        tmp_path / "m.png",
        "--output",
        tmp_path / "out.png",
    )
    assert code == 1 and (tmp_path / "out.png").read_bytes() == b"previous result"


def test_checkpoint_errors(tmp_path, capsys, v1_ckpt, v2_ckpt):
    _image(tmp_path / "in.png")
    _mask(tmp_path / "m.png")
    io_args = [
        "--image",
        tmp_path / "in.png",
        "--mask",
        tmp_path / "m.png",
        "--output",
        tmp_path / "o.png",
    ]
    os.mkdir(tmp_path / "empty")
    # a checkpoint with a variable missing
    from deepfill_tf.convert import read_tf1_checkpoint

    variables = read_tf1_checkpoint(v2_ckpt)
    del variables["inpaint_net/allconv14/bias"]
    write_tf1_checkpoint(variables, str(tmp_path / "partial"))
    cases = [
        (tmp_path / "nowhere", [], "checkpoint not found"),
        (tmp_path / "empty", [], "no checkpoint in"),
        (v2_ckpt, ["--model", "deepfill_v1"], "holds a DeepFill v2 generator, not deepfill_v1"),
        (v1_ckpt, ["--model", "deepfill_v2"], "holds a DeepFill v1 generator, not deepfill_v2"),
        (tmp_path / "partial", [], "missing inpaint_net/allconv14/bias"),
    ]
    for ckpt, extra, message in cases:
        code, _, err = run_cli(capsys, "--checkpoint", ckpt, *extra, *io_args)
        assert code == 1 and message in err, err
        assert err.count("\n") == 1
    assert not (tmp_path / "o.png").exists()


def test_batch_mode_skips_bad_pairs(tmp_path, capsys, v2_ckpt):
    (tmp_path / "in").mkdir()
    (tmp_path / "masks").mkdir()
    _image(tmp_path / "in" / "a.png")
    _mask(tmp_path / "masks" / "a.png")
    _image(tmp_path / "in" / "b.jpg", 48, 40)
    _mask(tmp_path / "masks" / "b.png", 48, 40)
    _image(tmp_path / "in" / "c.png")  # no mask
    code, out, err = run_cli(
        capsys,
        "--checkpoint",
        v2_ckpt,
        "--input-dir",
        tmp_path / "in",
        "--mask-dir",
        tmp_path / "masks",
        "--output-dir",
        tmp_path / "out",
    )
    assert code == 1
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.png"]
    assert "c.png" in err and "2 inpainted, 1 failed" in out
    # the same pairs through a file list of "image mask output" lines
    flist = tmp_path / "pairs.txt"
    flist.write_text("in/a.png masks/a.png res_a.png\n\nin/b.jpg masks/b.png res_b.png\n")
    code, out, err = run_cli(capsys, "--checkpoint", v2_ckpt, "--flist", flist)
    assert code == 0, err
    assert (tmp_path / "res_a.png").exists() and (tmp_path / "res_b.png").exists()


def test_console_script_prints_no_traceback_and_no_tf_noise(tmp_path, v2_ckpt):
    _image(tmp_path / "in.png")
    _mask(tmp_path / "m.png", 60, 50)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepfill_tf.cli.main",
            "inpaint",
            "--checkpoint",
            v2_ckpt,
            "--image",
            tmp_path / "in.png",
            "--mask",
            tmp_path / "m.png",
            "--output",
            tmp_path / "o.png",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "deepfill-tf inpaint: error: mask is 50x60 but the image is 50x70"
    ]


def test_console_script_fast_exit_leaves_a_complete_output(tmp_path, capsys, v2_ckpt):
    """`inpaint` ends with os._exit (no TensorFlow tear-down): the file is still complete and
    the same as in-process."""
    _image(tmp_path / "in.png")
    _mask(tmp_path / "m.png")
    io = ["--image", tmp_path / "in.png", "--mask", tmp_path / "m.png"]
    result = subprocess.run(
        [sys.executable, "-m", "deepfill_tf.cli.main", "inpaint", "--checkpoint", v2_ckpt, *io,
         "--output", tmp_path / "console.png"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote ")  # stdout flushed before the fast exit
    code, _, err = run_cli(capsys, "--checkpoint", v2_ckpt, *io, "--output", tmp_path / "main.png")
    assert code == 0, err
    console = np.asarray(Image.open(tmp_path / "console.png"))
    np.testing.assert_array_equal(console, np.asarray(Image.open(tmp_path / "main.png")))


def test_guided_v2_needs_and_uses_the_guide(tmp_path, capsys):
    ckpt = _write_checkpoint(DeepFillV2Generator.tiny(guided=True), tmp_path / "guided")
    image = _image(tmp_path / "in.png", 48, 40)
    hole = _mask(tmp_path / "m.png", 48, 40, box=(10, 10, 30, 30))
    edges = np.zeros((48, 40, 3), np.uint8)
    edges[::4] = 255
    Image.fromarray(edges).save(tmp_path / "edges.png")
    base = ["--checkpoint", ckpt, "--image", tmp_path / "in.png", "--mask", tmp_path / "m.png"]
    code, _, err = run_cli(capsys, *base, "--output", tmp_path / "o.png")
    assert code == 1 and "DeepFill v2 (guided)" in err and "--guide" in err
    code, _, err = run_cli(
        capsys, *base, "--guide", tmp_path / "edges.png", "--output", tmp_path / "o.png"
    )
    assert code == 0, err
    Image.fromarray(np.zeros_like(edges)).save(tmp_path / "no_edges.png")
    run_cli(capsys, *base, "--guide", tmp_path / "no_edges.png", "--output", tmp_path / "p.png")
    with_edges, without = (np.asarray(Image.open(tmp_path / n)) for n in ("o.png", "p.png"))
    np.testing.assert_array_equal(with_edges[~hole], image[~hole])
    assert np.any(with_edges[hole] != without[hole]), "the guide changes the result"


def test_scfegan_command(tmp_path, capsys):
    from deepfill_tf.models.sc_fegan import SCFEGANGenerator

    model = SCFEGANGenerator.tiny()
    model.build((1, 128, 128, 9))
    for v in model.weights:
        v.assign(RNG.normal(0, 0.2, v.shape).astype("float32"))
    write_tf1_checkpoint(
        {k: v.numpy() for k, v in model.tf1_variable_table().items()}, str(tmp_path / "sc")
    )
    image = _image(tmp_path / "in.png", 100, 90)
    hole = _mask(tmp_path / "m.png", 100, 90, box=(20, 20, 60, 60))
    sketch = np.zeros((100, 90), np.uint8)
    sketch[40, 20:60] = 255
    Image.fromarray(sketch).save(tmp_path / "sketch.png")
    color = np.zeros((100, 90, 3), np.uint8)
    color[30:35, 25:50] = (200, 30, 30)
    Image.fromarray(color).save(tmp_path / "color.png")
    args = [
        "--model", "scfegan", "--checkpoint", tmp_path / "sc", "--image", tmp_path / "in.png",
        "--mask", tmp_path / "m.png", "--sketch", tmp_path / "sketch.png", "--color", tmp_path / "color.png",
    ]  # fmt: skip
    for name, seed in (("a.png", 1), ("b.png", 1), ("c.png", 2)):
        code, _, err = run_cli(capsys, *args, "--seed", seed, "--output", tmp_path / name)
        assert code == 0, err
    a, b, c = (np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "b.png", "c.png"))
    assert a.shape == image.shape
    np.testing.assert_array_equal(a[~hole], image[~hole])
    np.testing.assert_array_equal(a, b)  # same seed, same noise
    assert np.any(a != c)
    _mask(tmp_path / "small_sketch.png", 50, 50)
    args[args.index(tmp_path / "sketch.png")] = tmp_path / "small_sketch.png"
    code, _, err = run_cli(capsys, *args, "--output", tmp_path / "d.png")
    assert code == 1 and "sketch is 50x50 but the image is 90x100" in err
    # a DeepFill checkpoint is not an SC-FEGAN one
    code, _, err = run_cli(
        capsys, "--model", "scfegan", "--checkpoint", _write_checkpoint(DeepFillV1Generator.tiny(), tmp_path / "v1"),
        "--image", tmp_path / "in.png", "--mask", tmp_path / "m.png", "--output", tmp_path / "e.png",
    )  # fmt: skip
    assert code == 1 and "holds a DeepFill v1 generator, not scfegan" in err
