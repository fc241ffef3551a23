"""The bad-input corpus of issue 15 as a test suite: every case a new user tried, for every
command. Each run asserts the exit code, exactly one line on stderr (the error or the
warning; never a "Traceback"), no file or folder left behind but the ones the case may write,
and every input file unchanged (hashed before and after)."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.cli.main import main, verbose_requested

RNG = np.random.default_rng(15)
H, W = 40, 48


# ---------------------------------------------------------------- input files


def _png(path, array) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def _image(path, h=H, w=W) -> str:
    return _png(path, RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _mask(path, h=H, w=W, channel=None) -> str:
    """White box on black; ``channel`` "red" draws it in red only, "alpha" only in alpha."""
    if channel == "alpha":
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[10:30, 12:36, 3] = 255
        return _png(path, rgba)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[10:30, 12:36, {"red": slice(0, 1), None: slice(0, 3)}[channel]] = 255
    return _png(path, rgb)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb(path) -> str:
    """A 70-byte PNG that claims 30000 x 30000 pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", 30000, 30000, 1, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    data += _chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    """A tiny DeepFill v2 checkpoint in the original TF1 layout."""
    from deepfill_tf.convert import tf1_variable_table, write_tf1_checkpoint
    from deepfill_tf.models.deepfill_generator import DeepFillV2Generator

    model = DeepFillV2Generator.tiny().build_for(64, 64)
    arrays = {k: v.numpy() for k, v in tf1_variable_table(model).items()}
    return write_tf1_checkpoint(arrays, str(tmp_path_factory.mktemp("ckpt")))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> str:
    """A tiny DeepFill v2 training run with checkpoints at steps 0 and 2, the latest truncated
    (as a kill or a full disk while saving leaves it)."""
    from deepfill_tf.config import load_config
    from deepfill_tf.training.loop import Trainer, prepare_run_dir

    log_dir = str(tmp_path_factory.mktemp("train") / "run")
    config = load_config("deepfill_v2_tiny", [f"log_dir={log_dir}"])
    trainer = Trainer(config, log=lambda m: None)
    prepare_run_dir(config, log_dir)
    trainer.checkpoints.save()
    trainer.step.assign(2)
    trainer.checkpoints.save()
    data = os.path.join(log_dir, "ckpt-2.data-00000-of-00001")
    with open(data, "rb") as f:
        content = f.read()
    with open(data, "wb") as f:
        f.write(content[: len(content) // 2])
    return log_dir


# ---------------------------------------------------------------- the corpus


@dataclass
class Case:
    """argv (with {ckpt} and tmp-relative paths), expected exit code, a piece of the one stderr
    line, the files the run may create (relative to tmp)."""

    argv: list
    code: int
    message: str
    may_create: set = field(default_factory=set)  # "dir/**": anything under dir
    kind: str = "error"  # or "warning"
    prefix: str | None = None  # default "deepfill-tf <command>: <kind>:"
    env: dict = field(default_factory=dict)  # environment variables of the run


def _setup(tmp) -> None:
    """Every input file any case reads, in ``tmp``."""
    _image(tmp / "img.png")
    _mask(tmp / "mask.png")
    _png(tmp / "black.png", np.zeros((H, W), np.uint8))
    _mask(tmp / "red.png", channel="red")
    _mask(tmp / "alpha.png", channel="alpha")
    _image(tmp / "small.png", 8, 8)
    _mask(tmp / "small_mask.png", 8, 8)
    _mask(tmp / "other_size.png", H + 4, W)
    (tmp / "garbage.png").write_bytes(b"this is not a png")
    data = (tmp / "img.png").read_bytes()
    (tmp / "truncated.png").write_bytes(data[: len(data) // 2])
    _bomb(tmp / "bomb.png")
    (tmp / "a_dir").mkdir()
    (tmp / "empty_ckpt").mkdir()
    (tmp / "a_file").write_bytes(b"not a folder")
    os.symlink("img.png", tmp / "link_to_img.png")
    (tmp / "latin1.flist").write_bytes("caf\xe9.png mask.png out.png\n".encode("latin-1"))
    (tmp / "blank_lines.flist").write_text("\n\nimg.png mask.png out1.png\n\nimg.png mask.png\n")
    (tmp / "self.flist").write_text("img.png mask.png img.png\n")
    for folder in ("batch_in", "batch_masks"):
        (tmp / folder).mkdir()
    _image(tmp / "batch_in" / "a.png")
    _image(tmp / "batch_in" / "c.png")
    _bomb(tmp / "batch_in" / "b.png")
    for name in ("a.png", "b.png", "c.png"):
        _mask(tmp / "batch_masks" / name)
    (tmp / "bad.yml").write_text("model: deepfill_v2\ncnumm: 8\n")
    (tmp / "logdir_file.yml").write_text(
        "model: deepfill_v2\ntrain_data: batch_in\nimg_shapes: [32, 32, 3]\ncnum: 4\n"
        "disc_cnum: 4\nheight: 16\nwidth: 16\nmax_delta_height: 4\nmax_delta_width: 4\n"
        "batch_size: 1\nlog_dir: a_file\n"
    )
    (tmp / "full").mkdir()
    (tmp / "full" / "keep.txt").write_text("mine")
    for folder in ("size_in", "size_masks"):
        (tmp / folder).mkdir()
    _image(tmp / "size_in" / "p.png")
    _mask(tmp / "size_masks" / "p.png", H + 8, W)


INPAINT = ["inpaint", "--checkpoint", "{ckpt}"]
ONE = [*INPAINT, "--image", "img.png", "--mask", "mask.png"]

CASES = {
    # inputs of a single inpaint
    "missing image": Case(
        [*INPAINT, "--image", "nope.png", "--mask", "mask.png", "--output", "o.png"],
        1,
        "--image nope.png: no such file",
    ),
    "missing mask": Case(
        [*INPAINT, "--image", "img.png", "--mask", "nope.png", "--output", "o.png"],
        1,
        "--mask nope.png: no such file",
    ),
    "image is a folder": Case(
        [*INPAINT, "--image", "a_dir", "--mask", "mask.png", "--output", "o.png"],
        1,
        "is a directory",
    ),
    "not an image": Case(
        [*INPAINT, "--image", "garbage.png", "--mask", "mask.png", "--output", "o.png"],
        1,
        "not an image",
    ),
    "truncated image": Case(
        [*INPAINT, "--image", "truncated.png", "--mask", "mask.png", "--output", "o.png"],
        1,
        "cannot decode",
    ),
    "decompression bomb": Case(
        [*INPAINT, "--image", "bomb.png", "--mask", "mask.png", "--output", "o.png"],
        1,
        "bomb.png: image too large to decode safely",
    ),
    "size mismatch": Case(
        [*INPAINT, "--image", "img.png", "--mask", "other_size.png", "--output", "o.png"],
        1,
        "mask is",
    ),
    "too small": Case(
        [*INPAINT, "--image", "small.png", "--mask", "small_mask.png", "--output", "o.png"],
        1,
        "smallest size",
    ),
    # outputs of a single inpaint
    "output is the image": Case([*ONE, "--output", "img.png"], 1, "refusing to overwrite"),
    "output is the mask": Case([*ONE, "--output", "mask.png"], 1, "refusing to overwrite"),
    "output is a symlink to the image": Case(
        [*ONE, "--output", "link_to_img.png"], 1, "refusing to overwrite"
    ),
    "image through a symlink, output the real file": Case(
        [*INPAINT, "--image", "link_to_img.png", "--mask", "mask.png", "--output", "img.png"],
        1,
        "refusing to overwrite",
    ),
    "output is a folder": Case([*ONE, "--output", "a_dir"], 1, "is a folder"),
    "output folder missing": Case([*ONE, "--output", "nowhere/o.png"], 1, "does not exist"),
    "output in a file": Case([*ONE, "--output", "a_file/o.png"], 1, "does not exist"),
    "output extension": Case([*ONE, "--output", "o.gif"], 1, "unsupported output extension"),
    "jpeg quality": Case([*ONE, "--output", "o.jpg", "--jpeg-quality", "0"], 1, "1..100"),
    "checkpoint missing": Case(
        ["inpaint", "--checkpoint", "nope", "--image", "img.png", "--mask", "mask.png"]
        + ["--output", "o.png"],
        1,
        "checkpoint not found",
    ),
    "checkpoint folder empty": Case(
        ["inpaint", "--checkpoint", "empty_ckpt", "--image", "img.png", "--mask", "mask.png"]
        + ["--output", "o.png"],
        1,
        "no checkpoint in",
    ),
    # masks that do nothing: a warning, the output is written
    "all-black mask": Case(
        [*INPAINT, "--image", "img.png", "--mask", "black.png", "--output", "o.png", "--quiet"],
        0,
        "mask has no hole",
        {"o.png"},
        "warning",
    ),
    "red-on-black mask": Case(
        [*INPAINT, "--image", "img.png", "--mask", "red.png", "--output", "o.png", "--quiet"],
        0,
        "use --mask-channel red",
        {"o.png"},
        "warning",
    ),
    "hole only in alpha": Case(
        [*INPAINT, "--image", "img.png", "--mask", "alpha.png", "--output", "o.png", "--quiet"],
        0,
        "use --mask-channel alpha",
        {"o.png"},
        "warning",
    ),
    # batch modes
    "flist not UTF-8": Case([*INPAINT, "--flist", "latin1.flist"], 1, "not a UTF-8 text file"),
    "flist line number after blank lines": Case(
        [*INPAINT, "--flist", "blank_lines.flist"], 1, "blank_lines.flist:5: expected"
    ),
    "flist output is its input": Case(
        [*INPAINT, "--flist", "self.flist"], 1, "refusing to overwrite"
    ),
    "batch output folder is the input folder": Case(
        [*INPAINT, "--input-dir", "batch_in", "--mask-dir", "batch_masks"]
        + ["--output-dir", "batch_in"],
        1,
        "refusing to overwrite",
    ),
    "batch with a bomb among good images": Case(
        [*INPAINT, "--input-dir", "batch_in", "--mask-dir", "batch_masks"]
        + ["--output-dir", "batch_out"],
        1,
        "b.png: image too large to decode safely",
        {"batch_out", "batch_out/a.png", "batch_out/c.png"},
    ),
    "batch mask folder missing": Case(
        [*INPAINT, "--input-dir", "batch_in", "--mask-dir", "nope", "--output-dir", "batch_out"],
        1,
        "nope: not a folder",
    ),
    # masks
    "masks huge size": Case(
        ["masks", "--size", "100000", "100000", "--count", "1", "--output-dir", "m"],
        1,
        "pixels per mask is more than",
    ),
    "masks output is a file": Case(
        ["masks", "--size", "64", "--count", "1", "--output-dir", "a_file"],
        1,
        "exists and is not a folder",
    ),
    "masks box too big": Case(
        ["masks", "--kind", "box", "--size", "64", "--box-size", "80", "80", "--output-dir", "m"],
        1,
        "",
    ),
    # export
    "export checkpoint missing": Case(
        ["export", "--checkpoint", "nope", "--output", "exp"], 1, "not found"
    ),
    "export output is a file": Case(
        ["export", "--checkpoint", "{ckpt}", "--output", "a_file"], 1, "not a folder"
    ),
    # convert
    "convert not a training run": Case(
        ["convert", "--to", "tf1", "--checkpoint", "{ckpt}", "--output", "conv"],
        1,
        "not a deepfill-tf training run",
    ),
    "convert output is a file": Case(
        ["convert", "--to", "tf1", "--checkpoint", "{ckpt}", "--output", "a_file"],
        1,
        "--output a_file: exists and is not a folder",
    ),
    "convert output folder holds files": Case(
        ["convert", "--to", "tf1", "--checkpoint", "{ckpt}", "--output", "full"],
        1,
        "already holds files (use --overwrite",
    ),
    "convert checkpoint missing": Case(
        ["convert", "--to", "tf1", "--checkpoint", "nope", "--output", "conv"],
        1,
        "nope: checkpoint not found",
    ),
    "batch size mismatch names the file": Case(
        [*INPAINT, "--input-dir", "size_in", "--mask-dir", "size_masks", "--output-dir", "so"],
        1,
        "p.png",
    ),
    # a training run whose latest checkpoint is truncated: the previous one, with a warning
    "truncated run checkpoint to inpaint": Case(
        ["inpaint", "--checkpoint", "{run}", "--image", "img.png", "--mask", "mask.png"]
        + ["--output", "o.png", "--quiet"],
        0,
        "ckpt-2 in ",
        {"o.png"},
        "warning",
        "deepfill-tf: warning:",
    ),
    "truncated run checkpoint to export": Case(
        ["export", "--checkpoint", "{run}", "--output", "exp"],
        0,
        "using ckpt-0, the newest readable checkpoint",
        {"exp/**"},
        "warning",
        "deepfill-tf: warning:",
    ),
    "truncated run checkpoint to convert": Case(
        ["convert", "--to", "tf1", "--checkpoint", "{run}", "--output", "conv"],
        0,
        "using ckpt-0",
        {"conv/**"},
        "warning",
        "deepfill-tf: warning:",
    ),
    "truncated run checkpoint by prefix": Case(
        ["convert", "--to", "tf1", "--checkpoint", "{run}/ckpt-2", "--output", "conv"],
        1,
        "ckpt-2 is unreadable",
    ),
    # train
    "train log_dir is a file": Case(
        ["train", "--config", "logdir_file.yml", "--max-iters", "1"],
        1,
        "log_dir a_file: exists and is not a folder",
    ),
    "train config missing": Case(["train", "--config", "nope.yml"], 1, "nope.yml"),
    "train unknown config key": Case(["train", "--config", "bad.yml"], 1, "cnumm"),
    # the switch of the fused gating kernel (deepfill_tf.native)
    "native switch not 0 or 1 to inpaint": Case(
        [*ONE, "--output", "o.png"],
        1,
        "DEEPFILL_TF_NATIVE must be 0 or 1, got 'maybe'",
        env={"DEEPFILL_TF_NATIVE": "maybe"},
    ),
    "native switch not 0 or 1 to train": Case(
        ["train", "--config", "logdir_file.yml", "--max-iters", "1"],
        1,
        "DEEPFILL_TF_NATIVE must be 0 or 1, got 'yes'",
        env={"DEEPFILL_TF_NATIVE": "yes"},
    ),
}


def _snapshot(root) -> dict[str, str | None]:
    """relative path -> sha256 (None for folders) of everything under ``root``."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = os.path.relpath(folder, root)
        if rel != ".":
            out[rel] = None
        for name in files:
            path = os.path.join(folder, name)
            key = os.path.normpath(os.path.join(rel, name))
            if os.path.islink(path):
                out[key] = "link:" + os.readlink(path)
                continue
            with open(path, "rb") as f:
                out[key] = hashlib.sha256(f.read()).hexdigest()
    return out


def _allowed(path: str, may_create: set) -> bool:
    return path in may_create or any(
        p.endswith("/**") and (path == p[:-3] or path.startswith(p[:-2])) for p in may_create
    )


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, ckpt, run, tmp_path, capfd, monkeypatch):
    case = CASES[name]
    _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    before, ckpt_before = _snapshot(tmp_path), _snapshot(os.path.dirname(ckpt))
    argv = [a.replace("{ckpt}", ckpt).replace("{run}", run) for a in case.argv]
    code = main(argv)
    out, err = capfd.readouterr()
    assert code == case.code, f"{name}: exit {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"{name}: {len(lines)} stderr lines:\n{err}"
    prefix = case.prefix or f"deepfill-tf {argv[0]}: {case.kind}:"
    assert lines[0].startswith(prefix) and case.message in lines[0], lines[0]
    after = _snapshot(tmp_path)
    new = {p for p in set(after) - set(before) if not _allowed(p, case.may_create)}
    assert not new, f"{name}: left behind {sorted(new)}"
    assert {k: after.get(k) for k in before} == before, f"{name}: an input changed or vanished"
    assert _snapshot(os.path.dirname(ckpt)) == ckpt_before, "the checkpoint changed"


def test_corpus_size():
    """The closing note of issue 15 quotes this number."""
    assert len(CASES) >= 35


# ---------------------------------------------------------------- the catch-all


def test_unexpected_exception_is_one_line_and_verbose_shows_the_traceback(
    tmp_path, capfd, monkeypatch
):
    import deepfill_tf.cli.masks as masks

    def boom(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(masks, "run", boom)
    monkeypatch.delenv("DEEPFILL_TF_VERBOSE", raising=False)
    argv = ["masks", "--size", "64", "--output-dir", str(tmp_path / "m")]
    assert main(argv) == 1
    err = capfd.readouterr().err
    assert err == (
        f"deepfill-tf masks: error: unexpected error: {tmp_path / 'm'}: ZeroDivisionError: "
        "division by zero (run with --verbose for the traceback)\n"
    )
    assert main([*argv, "--verbose"]) == 1
    err = capfd.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("deepfill-tf masks: error:")
    monkeypatch.setenv("DEEPFILL_TF_VERBOSE", "1")
    assert verbose_requested() and main(argv) == 1
    assert "Traceback" in capfd.readouterr().err


def test_out_of_memory_says_what_to_do(tmp_path, capfd, monkeypatch):
    import deepfill_tf.cli.inpaint as inpaint

    def oom(args):
        raise MemoryError()

    monkeypatch.setattr(inpaint, "run", oom)
    monkeypatch.setattr(inpaint, "check_inputs", lambda args: None)
    argv = ["inpaint", "--checkpoint", "c", "--image", "big.png", "--mask", "m.png"]
    assert main([*argv, "--output", "o.png"]) == 1
    err = capfd.readouterr().err
    assert err.startswith("deepfill-tf inpaint: error: out of memory on big.png:")
    assert "--hd-strategy" in err and err.count("\n") == 1


def test_inputs_are_checked_before_tensorflow_is_imported(tmp_path):
    """A typo is reported at once: the process never imports TensorFlow."""
    code = (
        "import sys\n"
        "from deepfill_tf.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "print('tensorflow' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    argv = ["inpaint", "--checkpoint", str(tmp_path), "--image", "nope.png", "--mask", "m.png"]
    result = subprocess.run(
        [sys.executable, "-c", code, *argv, "--output", "o.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "False", "TensorFlow was imported before the check"
    assert result.stderr.strip() == "deepfill-tf inpaint: error: --image nope.png: no such file"


# ---------------------------------------------------------------- faults


def test_output_write_failing_under_ulimit_leaves_nothing(ckpt, tmp_path):
    """``ulimit -f`` (file size limit) below the output's size: one line, no partial file."""
    image = np.asarray(
        Image.fromarray(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((256, 256))
    )
    _png(tmp_path / "img.png", image)  # noisy: the output PNG is well over 8 KB
    _mask(tmp_path / "mask.png", 256, 256)
    before = _snapshot(tmp_path)
    cli = [sys.executable, "-m", "deepfill_tf.cli.main", "inpaint", "--checkpoint", ckpt]
    cli += ["--image", "img.png", "--mask", "mask.png", "--output", "out.png"]
    script = 'ulimit -f 8; exec "$@"'
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        ["bash", "-c", script, "bash", *cli],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines == ["deepfill-tf inpaint: error: out.png: cannot write (File too large)"], lines
    assert _snapshot(tmp_path) == before, "a partial or temporary file was left behind"
