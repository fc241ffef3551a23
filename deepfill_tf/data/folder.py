"""Image lists from a folder (searched recursively) or a glob pattern."""

from __future__ import annotations

import glob
import os

from deepfill_tf.data.flist import EDGE_SUFFIX
from deepfill_tf.errors import ConfigError

__all__ = ["IMAGE_EXTENSIONS", "is_glob", "list_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def is_glob(pattern: str) -> bool:
    """True if ``pattern`` has glob wildcards (``*``, ``?``, ``[``)."""
    return glob.has_magic(pattern)


def list_images(source: str | os.PathLike) -> list[str]:
    """Sorted absolute paths of the images under a folder (recursively) or matching a glob.

    Only files with an image extension (``IMAGE_EXTENSIONS``, any case) are kept. Guided edge
    maps (``<name>_edge.jpg`` next to an image ``<name>.<ext>``) are left
    out (also when the glob does not list the image itself), so a folder prepared for guided
    training can be used as it is.

    Raises:
        ConfigError: nothing matches.
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        found = []
        for root, dirs, files in os.walk(source, followlinks=True):
            dirs.sort()
            found.extend(os.path.join(root, f) for f in files)
        where = f"folder {source}"
    else:
        found = [p for p in glob.glob(source, recursive=True) if os.path.isfile(p)]
        where = f"pattern {source!r}"
    images = sorted(
        os.path.abspath(p) for p in found if os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS
    )
    stems = {os.path.splitext(p)[0] for p in images}

    def is_edge_map(p: str) -> bool:
        if not p.endswith(EDGE_SUFFIX):
            return False
        stem = p[: -len(EDGE_SUFFIX)]
        return stem in stems or any(os.path.isfile(stem + ext) for ext in IMAGE_EXTENSIONS)

    images = [p for p in images if not is_edge_map(p)]
    if not images:
        raise ConfigError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {where}")
    return images
