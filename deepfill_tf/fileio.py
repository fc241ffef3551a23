"""Atomic file output: the one routine every writer of this package goes through.

A file is written under a hidden temporary name in its target folder and renamed over the
target with ``os.replace`` only once it is complete (written, flushed, fsync'ed), so a reader,
a server watching the folder or a user never sees a partial file, and a failure at any point
(an exception in the writer, a full disk, a file-size limit, Ctrl-C) leaves the target as it was
and no temporary file behind. A killed process (SIGKILL) can leave only a hidden temporary
(``.NAME.tmp-XXXXXXXX.EXT``), never a partial file under the target's name.

Files get the mode an ordinary ``open(path, "w")`` gives (``0o666`` minus the user's umask:
0644 under the usual umask 022), not ``tempfile.mkstemp``'s private 0600. An output path that
resolves to one of the run's inputs (the same path, through symlinks, or a hard link to it) is
refused before anything is written.

Low level on purpose: it imports nothing of this package but ``deepfill_tf.errors``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from deepfill_tf.errors import InputError

PathLike = str | os.PathLike
_TMP_MARK = ".tmp-"


def _same_file(a: str, b: str) -> bool:
    """``a`` and ``b`` name the same file: equal after resolving symlinks, or the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def refuse_input_overwrite(output: PathLike, inputs: Iterable[PathLike], what: str = "") -> None:
    """Raise if writing ``output`` would destroy one of ``inputs``.

    Args:
      output: the path about to be written.
      inputs: every input path of the run (``None`` entries are skipped).
      what: how the message names the output (e.g. ``"--output"``); default: nothing.

    Raises:
      InputError: ``output`` resolves to an input (same path, a symlink to it, a symlink
        folder, or a hard link), naming both.
    """
    output = os.fspath(output)
    for given in inputs:
        if given is None:
            continue
        given = os.fspath(given)
        if _same_file(output, given):
            label = f"{what} {output}" if what else output
            raise InputError(
                f"{label} is the input {given}: refusing to overwrite an input; "
                "choose another output path"
            )


def _check_target(path: str) -> str:
    """The target's folder, after the checks that need no write: it exists and is a folder, and
    ``path`` is not a folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder; give a file name to write")
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise InputError(f"{path}: {folder} is not a folder")
        raise InputError(f"{path}: output folder {folder} does not exist")
    return folder


def _create_temp(folder: str, name: str) -> tuple[int, str]:
    """Create a new, empty, hidden file beside the target: ``.NAME.tmp-XXXXXXXX.EXT``.

    ``os.open(..., 0o666)`` lets the kernel apply the umask, as for any new file. Every
    extension is kept (``a.weights.h5`` -> ``.a.tmp-XXXXXXXX.weights.h5``) because some writers
    choose or check the format from it (PIL, h5py, Keras 3's ``.weights.h5`` rule).
    """
    base = name.lstrip(".")
    stem, dot, rest = base.partition(".")
    prefix, ext = name[: len(name) - len(base)] + stem, dot + rest
    for _ in range(100):
        tmp = os.path.join(folder, f".{prefix}{_TMP_MARK}{secrets.token_hex(4)}{ext}")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def _cannot_write(path: str, error: OSError) -> InputError:
    reason = error.strerror or str(error)
    return InputError(f"{path}: cannot write ({reason})")


@contextlib.contextmanager
def atomic_path(
    path: PathLike, *, inputs: Iterable[PathLike] = (), what: str = ""
) -> Iterator[str]:
    """Yield a temporary path beside ``path``; when the block ends without an exception, the
    file written there replaces ``path`` (``os.replace``); otherwise it is deleted.

    For writers that want a file name (``keras`` ``save_weights``, PIL ``save(path)``); the
    temporary keeps ``path``'s extension and is created empty with the umask's mode. The
    writer must have closed the file by the end of the block. The file is fsync'ed before the
    rename.

    Args:
      path: the file to write.
      inputs: input paths of the run: ``path`` must not resolve to any of them.
      what: how error messages name ``path`` (e.g. ``"--output"``).

    Raises:
      InputError: ``path`` is an input, a folder, or in a folder that does not exist; an
        ``OSError`` while creating, syncing or renaming (the message names ``path`` and the
        cause: no space, file too large, permission denied, ...).
    """
    path = os.fspath(path)
    refuse_input_overwrite(path, inputs, what)
    folder = _check_target(path)
    try:
        fd, tmp = _create_temp(folder, os.path.basename(path))
    except OSError as e:
        raise _cannot_write(path, e) from e
    os.close(fd)
    try:
        yield tmp
        try:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as e:
            raise _cannot_write(path, e) from e
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(
    path: PathLike,
    data: bytes | str | Callable[[BinaryIO], object],
    *,
    inputs: Iterable[PathLike] = (),
    what: str = "",
    encoding: str = "utf-8",
) -> str:
    """Write ``data`` to ``path`` atomically (``atomic_path``); returns ``path``.

    Args:
      path: the file to write; its folder must exist.
      data: ``bytes``; ``str`` (encoded with ``encoding``); or a function that writes into
        the binary file object it is given (for output produced in pieces).
      inputs: input paths of the run: ``path`` must not resolve to any of them.
      what: how error messages name ``path``.
      encoding: for ``str`` data.

    Raises:
      InputError: see ``atomic_path``; also an ``OSError`` during the write (e.g. ``EFBIG``
        under ``ulimit -f``, ``ENOSPC``), after which nothing is left behind.
      Whatever ``data(f)`` raises, after removing the temporary file.
    """
    path = os.fspath(path)
    if isinstance(data, str):
        data = data.encode(encoding)
    with atomic_path(path, inputs=inputs, what=what) as tmp:
        try:
            with open(tmp, "wb") as f:
                if callable(data):
                    data(f)
                else:
                    f.write(data)
        except OSError as e:
            raise _cannot_write(path, e) from e
    return path
