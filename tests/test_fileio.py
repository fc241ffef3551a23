"""deepfill_tf.fileio: atomic writes with the umask's mode, inputs never overwritten, nothing
left behind by a failed or killed write."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from deepfill_tf.errors import InputError
from deepfill_tf.fileio import atomic_path, refuse_input_overwrite, write_atomic


@contextlib.contextmanager
def umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def _sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_mode_follows_the_umask(tmp_path, mask, mode):
    with umask(mask):
        write_atomic(tmp_path / "a.png", b"data")
        with atomic_path(tmp_path / "b.h5") as tmp:
            with open(tmp, "wb") as f:
                f.write(b"data")
    for name in ("a.png", "b.h5"):
        got = os.stat(tmp_path / name).st_mode & 0o777
        assert got == mode, f"{name}: mode {got:o} under umask {mask:03o}, want {mode:o}"


def test_replacing_a_private_file_gives_the_umask_mode(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    with umask(0o022):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.stat(target).st_mode & 0o777 == 0o644


def test_bytes_str_and_writer_function(tmp_path):
    assert write_atomic(tmp_path / "a.bin", b"\x00\x01") == str(tmp_path / "a.bin")
    write_atomic(tmp_path / "b.txt", "héllo\n")
    write_atomic(tmp_path / "c.bin", lambda f: [f.write(bytes([i])) for i in range(3)])
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01\x02"
    assert _listing(tmp_path) == ["a.bin", "b.txt", "c.bin"]


def test_temporary_keeps_the_extension_and_is_hidden_beside_the_target(tmp_path):
    with atomic_path(tmp_path / "weights.h5") as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        name = os.path.basename(tmp)
        assert name.startswith(".weights.tmp-") and name.endswith(".h5")
        assert os.path.exists(tmp) and not (tmp_path / "weights.h5").exists()
        with open(tmp, "wb") as f:
            f.write(b"w")
    with atomic_path(tmp_path / "vgg16.weights.h5") as tmp:
        assert os.path.basename(tmp).startswith(".vgg16.tmp-")
        assert tmp.endswith(".weights.h5"), "Keras 3 refuses names not ending in .weights.h5"
        with open(tmp, "wb") as f:
            f.write(b"w")
    assert _listing(tmp_path) == ["vgg16.weights.h5", "weights.h5"]


def test_writer_failing_mid_file_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def writer(f):
        f.write(b"x" * 100_000)
        f.flush()
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_atomic(target, writer)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_atomic(tmp_path / "new.png", writer)
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "c.png") as tmp:
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"previous"
    assert _listing(tmp_path) == ["out.png"]


_WRITE_BIG = textwrap.dedent(
    """
    import sys
    from deepfill_tf.errors import InputError
    from deepfill_tf.fileio import write_atomic
    try:
        write_atomic(sys.argv[1], b"x" * 200_000)
    except InputError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    """
)


def test_write_over_the_file_size_limit_leaves_nothing(tmp_path):
    """``ulimit -f``: the kernel refuses the write (EFBIG; Python ignores SIGXFSZ) half-way."""
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "big.bin"
    target.write_bytes(b"previous")
    script = f'ulimit -f 16; exec "{sys.executable}" -c "$0" "$1"'
    result = subprocess.run(
        ["bash", "-c", script, _WRITE_BIG, str(target)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == f"{target}: cannot write (File too large)"
    assert target.read_bytes() == b"previous"
    assert _listing(folder) == ["big.bin"], "a temporary file was left behind"


_WRITE_SLOWLY = textwrap.dedent(
    """
    import sys, time
    from deepfill_tf.fileio import write_atomic

    def writer(f):
        f.write(b"x" * 4096)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)

    write_atomic(sys.argv[1], writer)
    """
)


def test_sigkill_mid_write_never_leaves_a_partial_file_under_the_target_name(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITE_SLOWLY, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert target.read_bytes() == b"previous"
    leftovers = [n for n in _listing(tmp_path) if n != "out.png"]
    # Only a hidden temporary can survive SIGKILL (no handler runs), never the target's name.
    assert all(n.startswith(".out.tmp-") for n in leftovers), leftovers


def test_refuses_to_overwrite_an_input_however_it_is_named(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    image = data / "photo.png"
    image.write_bytes(b"precious")
    before = _sha(image)
    (tmp_path / "link.png").symlink_to(image)
    (tmp_path / "folder_link").symlink_to(data)
    os.link(image, tmp_path / "hard.png")
    relative = os.path.relpath(image)
    for output in [
        image,
        str(data / "." / "photo.png"),
        relative,
        tmp_path / "link.png",
        tmp_path / "folder_link" / "photo.png",
        tmp_path / "hard.png",
    ]:
        with pytest.raises(InputError, match="refusing to overwrite an input") as info:
            write_atomic(output, b"oops", inputs=[None, tmp_path / "mask.png", image])
        assert "\n" not in str(info.value)
        assert str(image) in str(info.value)
    # The input given through a symlink is protected too.
    with pytest.raises(InputError, match="--output .* is the input"):
        refuse_input_overwrite(image, [tmp_path / "link.png"], "--output")
    assert _sha(image) == before
    assert _listing(data) == ["photo.png"]
    write_atomic(data / "photo_out.png", b"ok", inputs=[image])  # a different name is fine


def test_bad_targets_are_one_line_input_errors(tmp_path):
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_bytes(b"")
    cases = {
        tmp_path / "a_folder": "is a folder; give a file name to write",
        tmp_path / "missing" / "out.png": "does not exist",
        tmp_path / "a_file" / "out.png": "is not a folder",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=message) as info:
            write_atomic(path, b"x")
        assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    assert _listing(tmp_path) == ["a_file", "a_folder"]
    assert _listing(tmp_path / "a_folder") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_folder_is_a_one_line_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(InputError, match=r"cannot write \(Permission denied\)"):
            write_atomic(folder / "out.png", b"x")
    finally:
        os.chmod(folder, 0o755)
    assert _listing(folder) == []


def test_a_slow_writer_is_not_visible_under_the_target_name(tmp_path):
    target = tmp_path / "out.bin"
    seen = []

    def writer(f):
        f.write(b"part")
        f.flush()
        seen.append(target.exists())
        time.sleep(0.01)
        f.write(b"rest")

    write_atomic(target, writer)
    assert seen == [False] and target.read_bytes() == b"partrest"


def _every_writer(folder) -> dict:
    """Run each writer of the package that goes through ``fileio`` once into ``folder``;
    returns {what: the files it wrote}."""
    import numpy as np

    from deepfill_tf.cli.main import main
    from deepfill_tf.config import load_config, save_config
    from deepfill_tf.convert.tf1_checkpoint import write_tf1_checkpoint
    from deepfill_tf.inference.io import write_png

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    write_png(str(folder / "out.png"), np.zeros((8, 8, 3), np.uint8))
    save_config(load_config(os.path.join(repo, "configs", "demo.yml")), folder / "config.yml")
    write_tf1_checkpoint({"a/kernel": np.ones((2, 2), np.float32)}, str(folder / "ckpt"))
    argv = ["masks", "--kind", "box", "--size", "32", "32", "--count", "2", "--seed", "0"]
    assert main([*argv, "--output-dir", str(folder / "masks")]) == 0
    return {
        "write_png": [folder / "out.png"],
        "save_config": [folder / "config.yml"],
        "write_tf1_checkpoint state": [folder / "ckpt" / "checkpoint"],
        "deepfill-tf masks": sorted((folder / "masks").iterdir()),
    }


def test_the_package_writers_use_the_umask_mode_and_leave_no_temporary(tmp_path):
    with umask(0o022):
        written = _every_writer(tmp_path)
    for what, paths in written.items():
        assert paths, what
        for path in paths:
            mode = os.stat(path).st_mode & 0o777
            assert mode == 0o644, f"{what}: {path.name} has mode {mode:o}, want 644"
    hidden = [p for p in tmp_path.rglob(".*")]
    assert hidden == [], f"temporary files left behind: {hidden}"
