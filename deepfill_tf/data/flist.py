"""``.flist`` training file lists (the original's format) and guided edge-image names.

A ``.flist`` is a text file with one image path per line (what the original README's
``flist.py`` script writes). The original (JiahuiYu/generative_inpainting ``train.py``) does
``open(flist).read().splitlines()`` and hands each line to neuralgym's ``DataFromFNames``,
which passes it straight to ``cv2.imread``. Hence:

* a path is used exactly as written; a relative path is relative to the **current working
  directory** of the training process, not to the folder of the ``.flist`` file. ``read_flist``
  does the same by default (and makes the paths absolute right away, so a later ``os.chdir``
  cannot change them); ``relative_to="flist"`` resolves them against the flist's folder;
* the original keeps blank lines and surrounding spaces, and ``cv2.imread('')`` then fails
  forever (the reader thread sleeps and retries); we strip each line and skip blank ones.
"""

from __future__ import annotations

import os
import pathlib

from deepfill_tf.errors import ConfigError

__all__ = ["edge_path", "read_flist"]

EDGE_SUFFIX = "_edge.jpg"


def read_flist(
    path: str | os.PathLike, *, relative_to: str | os.PathLike | None = None
) -> list[str]:
    """Image paths of a ``.flist`` file, in file order (stripped, blank lines skipped).

    Args:
        path: the flist file (UTF-8).
        relative_to: base of relative paths: ``None`` = the current working directory (as
            the original), ``"flist"`` = the flist's own folder, or any folder.

    Returns:
        list of absolute paths (possibly naming missing files: they are skipped, with a
        warning, when the pipeline reaches them).

    Raises:
        ConfigError: the flist cannot be read or names no file at all; the message names
            the file and, for a line that is not text, its line number.
    """
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"file list not found: {path}") from None
    except OSError as e:
        raise ConfigError(f"cannot read file list {path}: {e.strerror or e}") from None
    names = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"{path}:{number}: not UTF-8 text (is it a file list?)") from None
        if line:
            names.append(line)
    if not names:
        raise ConfigError(f"file list {path} lists no image paths")
    if relative_to is None:
        base = os.getcwd()
    elif os.fspath(relative_to) == "flist":
        base = os.path.dirname(os.path.abspath(path))
    else:
        base = os.path.abspath(os.fspath(relative_to))
    return [os.path.normpath(os.path.join(base, n)) for n in names]


def edge_path(image_path: str) -> str:
    """The guided DeepFill v2 edge image beside ``image_path``: ``<name>_edge.jpg``.

    The original builds it as ``fname[:-4] + '_edge.jpg'``: it drops the last four
    characters, i.e. a dot and a 3-letter extension (``a/x.png`` -> ``a/x_edge.jpg``, the
    same here). For other extensions the original's name is odd (``x.jpeg`` -> ``x._edge.jpg``);
    here the extension is replaced as a whole (``x.jpeg`` -> ``x_edge.jpg``).
    """
    return os.path.splitext(image_path)[0] + EDGE_SUFFIX
