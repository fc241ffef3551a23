"""``make_dataset``: tf.data training input from a .flist, a folder, a glob, a list or TFDS.

Element layout (what the DeepFill training step consumes):

* ``guided=False``: images float32 (B, H, W, 3), **BGR** in [-1, 1] (``x / 127.5 - 1``);
  ``normalize=False`` gives uint8 BGR (B, H, W, 3) instead.
* ``guided=True``: a tuple ``(images, edges)``, edges float32 (B, H, W, 1): channel 0 of the
  BGR-decoded ``<name>_edge.jpg`` / 255, binarised as ``edge > edge_threshold`` (inpaint.yml
  0.6, what v2's ``build_graph_with_losses`` does) unless ``edge_threshold`` is None.

The original (neuralgym ``DataFromFNames``) draws files uniformly at random with replacement
from 16 threads; here every file is seen once per epoch in a seeded shuffled order (the usual
tf.data form of the same thing), repeated forever by default.

Unreadable files (missing, empty, not an image, truncated) are skipped and named once each in
a ``logging`` warning (logger ``deepfill_tf.data``), and never stop a run: each file is
decoded in a one-element sub-dataset with ``ignore_errors`` followed by a marked placeholder,
so the failure is seen with its path (``ignore_errors`` on the whole pipeline would drop the
element without saying which file it was). If every listed file has failed, iteration raises
instead of spinning forever.

Determinism: with ``seed`` set, the shuffle order, the random crops and therefore the
batches are the same on every run (parallel stages keep their order, ``deterministic=True``).
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable, Sequence

import tensorflow as tf

from deepfill_tf.data.flist import edge_path, read_flist
from deepfill_tf.data.folder import is_glob, list_images
from deepfill_tf.data.images import augment, decode_bgr, fit_to_shape, normalize_bgr
from deepfill_tf.errors import ConfigError

__all__ = ["make_dataset", "resolve_source"]

logger = logging.getLogger("deepfill_tf.data")

TFDS_PREFIX = "tfds:"
TFDS_SHUFFLE_BUFFER = 256  # decoded images held for shuffling a TFDS stream


def _check_shape(img_shape: Sequence[int]) -> tuple[int, int]:
    shape = tuple(int(v) for v in img_shape)
    if len(shape) not in (2, 3) or shape[0] < 1 or shape[1] < 1 or shape[2:] not in ((), (3,)):
        raise ConfigError(
            f"img_shapes must be [H, W] or [H, W, 3] with H, W > 0, got {list(img_shape)}"
        )
    return shape[0], shape[1]


def resolve_source(
    source: str | os.PathLike | Sequence[str], *, relative_to: str | os.PathLike | None = None
) -> list[str]:
    """Absolute image paths of a flist file, a folder, a glob pattern or a list of paths.

    Raises:
        ConfigError: empty list, nothing found, or none of the listed files exists.
    """
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if os.path.isdir(text) or (is_glob(text) and not os.path.isfile(text)):
            paths = list_images(text)
        elif os.path.isfile(text):
            paths = read_flist(text, relative_to=relative_to)
        else:
            raise ConfigError(f"{text}: no such file list, folder or glob match")
        where = text
    else:
        paths = [os.path.abspath(os.fspath(p)) for p in source]
        where = "image list"
        if not paths:
            raise ConfigError("the image list is empty")
    # Only look until the first existing file: a multi-million line flist stays cheap.
    if not any(os.path.isfile(p) for p in paths):
        raise ConfigError(f"{where}: none of its {len(paths)} files exists (first: {paths[0]})")
    return paths


class _FailureLog:
    """Warns once per unreadable file; raises when every file has failed."""

    def __init__(self, total: int):
        self.total = total
        self.failed: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, image_path, edge_file) -> bool:
        image_path = image_path.numpy().decode("utf-8", "replace")
        edge_file = edge_file.numpy().decode("utf-8", "replace")
        with self.lock:
            new = image_path not in self.failed
            self.failed.add(image_path)
            all_failed = len(self.failed) >= self.total
        if new:
            logger.warning(
                "skipping training image %s: %s", image_path, _reason(image_path, edge_file)
            )
        if all_failed:
            raise ConfigError(
                f"all {self.total} training images are unreadable (last: {image_path})"
            )
        return False


def _reason(image_path: str, edge_file: str) -> str:
    for label, p in (("", image_path), ("edge image ", edge_file)):
        if not p:
            continue
        if not os.path.isfile(p):
            return f"{label}{p} does not exist"
        if os.path.getsize(p) == 0:
            return f"{label}{p} is empty"
    return "cannot be decoded as an image (corrupt, truncated or an unsupported format)"


def make_dataset(
    source: str | os.PathLike | Sequence[str],
    *,
    batch_size: int,
    img_shape: Sequence[int] = (256, 256, 3),
    random_crop: bool = False,
    guided: bool = False,
    edge_threshold: float | None = 0.6,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int | None = None,
    skip: int = 0,
    drop_remainder: bool = True,
    normalize: bool = True,
    relative_to: str | os.PathLike | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    download: bool = False,
    image_key: str = "image",
    random_flip: bool = False,
    random_channel_shuffle: bool = False,
) -> tf.data.Dataset:
    """Batched training images as the original's data pipeline delivers them.

    Args:
        source: a ``.flist`` file (one path per line, relative to the working directory as
            the original, see ``relative_to``), a folder (searched recursively), a glob
            pattern, a list of paths, or ``"tfds:NAME[:SPLIT]"`` (TensorFlow Datasets,
            split default ``train``; needs ``tensorflow_datasets``).
        batch_size: images per batch (inpaint.yml ``batch_size``).
        img_shape: [H, W] or [H, W, 3] (inpaint.yml ``img_shapes``).
        random_crop: False = bilinear resize to H x W; True = random H x W crop, smaller
            images upscaled first (inpaint.yml ``random_crop``; see ``deepfill_tf.data.images``).
        guided: also load ``<name>_edge.jpg`` beside each image (v2 ``guided``); elements
            become ``(images, edges)``.
        edge_threshold: edges are ``channel0 / 255 > edge_threshold`` (inpaint.yml 0.6);
            None keeps the [0, 1] values.
        shuffle: shuffle the files (reshuffled every epoch).
        repeat: repeat forever (training); False = one pass.
        seed: makes shuffling and random crops reproducible; None = random.
        skip: images of the stream already read (a resumed run): skipped before decoding,
            so the stream goes on exactly where it stopped (same files, order and crops).
        drop_remainder: drop a last incomplete batch (a training step needs a full batch).
        normalize: float32 BGR in [-1, 1] (True) or uint8 BGR (False).
        relative_to: base of relative flist paths (None = working directory, "flist" = the
            flist's folder).
        data_dir, manual_dir, download, image_key: TFDS only: where the prepared data lives,
            where manually downloaded archives are, whether to download and prepare, and the
            image feature's name.
        random_flip, random_channel_shuffle: augmentation the original does not do (see
            ``deepfill_tf.data.images.augment``): mirror left-right with probability 1/2,
            permute the colour channels at random. Seeded like the crops.

    Returns:
        ``tf.data.Dataset`` of images (B, H, W, 3), or (images, edges (B, H, W, 1)) if guided.

    Raises:
        ConfigError: bad shape/batch size, empty or missing source, TFDS not installed.
    """
    target_hw = _check_shape(img_shape)
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)

    def fit(images, s):
        out = fit_to_shape(images, target_hw, random_crop=random_crop, seed=s)
        return tuple(augment(out, s, flip=random_flip, shuffle_channels=random_channel_shuffle))

    if isinstance(source, str) and source.startswith(TFDS_PREFIX):
        if guided:
            raise ConfigError("guided training needs <name>_edge.jpg files; TFDS sources have none")
        from deepfill_tf.data.tfds import tfds_images

        images = tfds_images(
            source[len(TFDS_PREFIX) :],
            data_dir=data_dir,
            manual_dir=manual_dir,
            download=download,
            shuffle_files=shuffle,
            seed=seed,
            image_key=image_key,
        )
        if shuffle:  # shards are read in a seeded order; also mix images across shards
            images = images.shuffle(TFDS_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        ds = _with_seeds(images.repeat() if repeat else images, seed).skip(int(skip))
        ds = ds.map(
            lambda image, s: fit([image], s),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        paths = resolve_source(source, relative_to=relative_to)
        ds = _files_dataset(paths, target_hw, fit, guided, shuffle, repeat, seed, int(skip))
    return _batch(ds, int(batch_size), guided, edge_threshold, normalize, drop_remainder)


def _with_seeds(ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """Append a per-element stateless seed [seed, i] (i = position in the stream)."""
    counter = tf.data.Dataset.counter(dtype=tf.int64)
    seed_t = tf.constant(seed, tf.int64)
    return tf.data.Dataset.zip(ds, counter).map(lambda x, i: (x, tf.stack([seed_t, i])))


def _files_dataset(
    paths: list[str],
    target_hw: tuple[int, int],
    fit: Callable[[list[tf.Tensor], tf.Tensor], tuple[tf.Tensor, ...]],
    guided: bool,
    shuffle: bool,
    repeat: bool,
    seed: int,
    skip: int = 0,
) -> tf.data.Dataset:
    """Per-file decode with named failures; yields tuples of uint8 (H, W, C) tensors.

    ``fit(decoded, seed)`` brings one sample's decoded images to ``target_hw`` (crop or
    resize, then augmentation)."""
    edges = [edge_path(p) for p in paths] if guided else [""] * len(paths)
    ds = tf.data.Dataset.from_tensor_slices((paths, edges))
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = _with_seeds(ds, seed).skip(skip)  # file names and seeds only: nothing decoded

    @tf.autograph.experimental.do_not_convert
    def load(files, s):
        image_file, edge_file = files
        decoded = [decode_bgr(tf.io.read_file(image_file))]
        if guided:
            decoded.append(decode_bgr(tf.io.read_file(edge_file))[..., :1])
        return fit(decoded, s), True, files

    placeholder = [tf.zeros([*target_hw, 3], tf.uint8)]
    if guided:
        placeholder.append(tf.zeros([*target_hw, 1], tf.uint8))
    placeholder = tuple(placeholder)

    def one_file(files, s):
        good = tf.data.Dataset.from_tensors((files, s)).map(load).ignore_errors()
        bad = tf.data.Dataset.from_tensors((placeholder, False, files))
        return good.concatenate(bad).take(1)

    failures = _FailureLog(len(set(paths)))

    def keep(images, ok, files):
        return tf.cond(
            ok,
            lambda: tf.constant(True),
            lambda: tf.py_function(failures, [files[0], files[1]], tf.bool),
        )

    ds = ds.interleave(
        one_file,
        cycle_length=tf.data.AUTOTUNE,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.filter(keep).map(lambda images, ok, files: images)


def _batch(
    ds: tf.data.Dataset,
    batch_size: int,
    guided: bool,
    edge_threshold: float | None,
    normalize: bool,
    drop_remainder: bool,
) -> tf.data.Dataset:
    def finish(*batch):
        images = normalize_bgr(batch[0]) if normalize else batch[0]
        if not guided:
            return images
        edges = tf.cast(batch[1], tf.float32) / 255.0
        if edge_threshold is not None:
            edges = tf.cast(edges > edge_threshold, tf.float32)
        return images, edges

    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
