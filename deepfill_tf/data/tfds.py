"""Training images from a TensorFlow Datasets (TFDS) dataset.

``tensorflow_datasets`` is an optional dependency: it is imported only when a ``tfds:`` source
is used, and its absence is a one-line ConfigError. Nothing is downloaded unless
``download=True``; datasets that need manually downloaded archives (Places365, CelebA-HQ,
...) read them from ``manual_dir``.
"""

from __future__ import annotations

import tensorflow as tf

from deepfill_tf.data.images import to_bgr3
from deepfill_tf.errors import ConfigError

__all__ = ["parse_tfds_name", "tfds_images"]


def parse_tfds_name(spec: str) -> tuple[str, str]:
    """``"NAME[:SPLIT]"`` -> (name, split); the split defaults to ``train``.

    NAME may carry a config and version (``places365_small/256:1.0.0`` is not supported by
    this syntax: use ``NAME/CONFIG`` and the default version).
    """
    name, _, split = spec.partition(":")
    if not name:
        raise ConfigError(
            f"tfds source needs a dataset name: 'tfds:NAME[:SPLIT]', got 'tfds:{spec}'"
        )
    return name, split or "train"


def tfds_images(
    spec: str,
    *,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    download: bool = False,
    shuffle_files: bool = True,
    seed: int | None = None,
    image_key: str = "image",
) -> tf.data.Dataset:
    """Unbatched uint8 (h, w, 3) **BGR** images of a TFDS split (one pass).

    Args:
        spec: ``"NAME[:SPLIT]"``.
        data_dir: TFDS data folder (default: TFDS's own, ``~/tensorflow_datasets``).
        manual_dir: folder of manually downloaded archives, for ``download=True``.
        download: download and prepare the dataset if it is not prepared yet.
        shuffle_files: read the TFDS shards in a (seeded) random order.
        seed: shuffle seed of the shard order.
        image_key: the feature holding the image.

    Raises:
        ConfigError: ``tensorflow_datasets`` missing, unknown dataset or split, dataset not
            prepared (and ``download`` False), or no ``image_key`` feature.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ConfigError(
            "tfds: sources need the optional package tensorflow_datasets "
            "(pip install tensorflow-datasets), which is not installed"
        ) from None
    name, split = parse_tfds_name(spec)
    try:
        ds = tfds.load(
            name,
            split=split,
            data_dir=data_dir,
            download=download,
            shuffle_files=shuffle_files,
            read_config=tfds.ReadConfig(shuffle_seed=seed),
            download_and_prepare_kwargs={
                "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)
            },
        )
    except Exception as e:  # TFDS raises many types (DatasetNotFoundError, AssertionError, ...)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"tfds:{spec}: {first_line}") from None
    if not isinstance(ds.element_spec, dict) or image_key not in ds.element_spec:
        keys = sorted(ds.element_spec) if isinstance(ds.element_spec, dict) else []
        raise ConfigError(f"tfds:{spec} has no feature {image_key!r} (features: {keys})")
    return ds.map(lambda ex: to_bgr3(ex[image_key]), num_parallel_calls=tf.data.AUTOTUNE)
