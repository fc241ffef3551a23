"""``.flist`` files as the original training reads them: one image path per line.

The original (generative_inpainting ``train.py``) does ``open(flist).read().splitlines()`` and
hands each line to neuralgym's ``DataFromFNames``, which passes it straight to
``cv2.imread``. Hence:

* a path is used exactly as written; a relative path is relative to the **current working
  directory** of the training process, not to the folder of the ``.flist`` file (we do the
  same, so an original flist works from the same place it worked before);
* the original keeps blank lines and surrounding spaces, and ``cv2.imread('')`` then fails
  forever (the reader thread sleeps and retries); we strip each line and skip blank ones;
* guided DeepFill v2 pairs ``x.jpg`` with the edge map ``x_edge.jpg``: the last 4 characters
  of the path are replaced by ``_edge.jpg`` (see ``edge_path``).
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Iterable

from deepfill_tf.errors import ConfigError


def read_flist(path: str | os.PathLike) -> list[str]:
    """Image paths listed in ``path``, one per line, stripped, blank lines skipped.

    Raises:
        ConfigError: the file is missing or unreadable, or lists no path.
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"file list not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read file list {path}: {e}") from None
    paths = [line.strip() for line in text.splitlines()]
    paths = [p for p in paths if p]
    if not paths:
        raise ConfigError(f"file list {path} lists no image paths")
    return paths


def write_flist(paths: Iterable[str | os.PathLike], path: str | os.PathLike) -> pathlib.Path:
    """Write ``paths`` one per line (atomically) in the format ``read_flist`` reads."""
    path = pathlib.Path(path)
    lines = [os.fspath(p) for p in paths]
    for line in lines:
        if not line.strip() or "\n" in line or "\r" in line or line != line.strip():
            raise ConfigError(f"cannot write {line!r} to a file list (blank, spaces or newline)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def edge_path(image_path: str) -> str:
    """The guided-v2 edge map of an image path: ``'a/x.jpg'`` -> ``'a/x_edge.jpg'``.

    As the original, the last 4 characters are dropped whatever they are (so ``x.jpeg``
    gives ``x._edge.jpg``).
    """
    return image_path[:-4] + "_edge.jpg"
