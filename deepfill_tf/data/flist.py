"""The original's ``.flist`` training file lists and guided edge-image names.

A ``.flist`` is a text file with one image path per line (what the original README's
``flist.py`` script writes). The original reads it with ``f.read().splitlines()`` and hands each
line to ``cv2.imread`` unchanged, so **relative paths are relative to the current working
directory** of the training process, not to the flist's folder. ``read_flist`` does the same
by default (and makes the paths absolute right away, so a later ``os.chdir`` cannot change
them); ``relative_to="flist"`` resolves them against the flist's folder instead.
"""

from __future__ import annotations

import os

from neuralgym_compat import flist as neuralgym_flist

__all__ = ["edge_path", "read_flist"]

EDGE_SUFFIX = "_edge.jpg"


def read_flist(
    path: str | os.PathLike, *, relative_to: str | os.PathLike | None = None
) -> list[str]:
    """Image paths of a ``.flist`` file, in file order.

    The file is parsed by ``neuralgym_compat.flist.read_flist`` (stripped lines, blank lines
    ignored); the paths are then made absolute.

    Args:
        path: the flist file.
        relative_to: base of relative paths: ``None`` = the current working directory (as
            the original), ``"flist"`` = the flist's own folder, or any folder.

    Returns:
        list of absolute paths (possibly naming missing files: they are skipped, with a
        warning, when the pipeline reaches them).

    Raises:
        ConfigError: the flist cannot be read or names no file at all.
    """
    names = neuralgym_flist.read_flist(path)  # the file format: one of the original's
    if relative_to is None:
        base = os.getcwd()
    elif os.fspath(relative_to) == "flist":
        base = os.path.dirname(os.path.abspath(path))
    else:
        base = os.path.abspath(os.fspath(relative_to))
    return [os.path.normpath(os.path.join(base, n)) for n in names]


def edge_path(image_path: str) -> str:
    """The guided edge image beside ``image_path``: ``<name>_edge.jpg``.

    The original builds it as ``fname[:-4] + '_edge.jpg'``, i.e. it replaces a 3-letter
    extension; for those (``a.png`` -> ``a_edge.jpg``) this is the same, for other lengths
    (``a.jpeg``) the extension is replaced as a whole (``a_edge.jpg``, where the original
    would look for ``a.j_edge.jpg``).
    """
    return os.path.splitext(image_path)[0] + EDGE_SUFFIX
