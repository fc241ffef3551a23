"""tf.data input: BGR decoding, channel conversions, resize/crop, flists, folders, guided edge
maps, determinism, unreadable files skipped and named once, configuration errors."""

from __future__ import annotations

import itertools
import logging
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deepfill_tf.data import list_images, make_dataset, read_flist
from deepfill_tf.errors import ConfigError

LOGGER = "deepfill_tf.data"


def _save(path, array, **kw):
    Image.fromarray(array).save(path, **kw)
    return str(path)


def _rgb_noise(h, w, seed):
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3)).astype(np.uint8)


def _first(ds, n=1):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(n)]


def _resize_ref(img, oh, ow):
    """NumPy bilinear resize with half-pixel centres and edge clamping (cv2 INTER_LINEAR)."""
    img = img.astype(np.float64)
    ih, iw = img.shape[:2]

    def axis(n_out, n_in):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    y0, y1, wy = axis(oh, ih)
    x0, x1, wx = axis(ow, iw)
    top = img[y0][:, x0] * (1 - wx)[None, :, None] + img[y0][:, x1] * wx[None, :, None]
    bot = img[y1][:, x0] * (1 - wx)[None, :, None] + img[y1][:, x1] * wx[None, :, None]
    return top * (1 - wy)[:, None, None] + bot * wy[:, None, None]


@pytest.fixture
def files(tmp_path):
    """Tiny images of every kind, plus a corrupt one."""
    red = np.zeros((20, 24, 3), np.uint8)
    red[..., 0] = 255
    rgba = np.zeros((18, 18, 4), np.uint8)
    rgba[..., 1], rgba[..., 3] = 200, 3  # green, nearly transparent: alpha is dropped
    gray16 = np.full((16, 16), 40000, np.uint16)
    return {
        "red": _save(tmp_path / "red.png", red),
        "gray": _save(tmp_path / "gray.jpg", np.full((20, 20), 77, np.uint8), quality=100),
        "rgba": _save(tmp_path / "rgba.png", rgba),
        "gray16": _save(tmp_path / "gray16.png", gray16),
        "noise": _save(tmp_path / "noise.png", _rgb_noise(40, 50, 0)),
        "corrupt": _write(tmp_path / "corrupt.png", b"\x89PNG\r\n\x1a\n not really a png"),
    }


def _write(path, data: bytes):
    path.write_bytes(data)
    return str(path)


def _flist(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_bgr_order_shape_and_range(files):
    (batch,) = _first(make_dataset([files["red"]], batch_size=2, img_shape=(16, 16, 3), seed=0))
    assert batch.shape == (2, 16, 16, 3) and batch.dtype == np.float32
    # pure red RGB -> BGR (0, 0, 255) -> (-1, -1, 1)
    np.testing.assert_array_equal(batch[..., 0], -1.0)
    np.testing.assert_array_equal(batch[..., 1], -1.0)
    np.testing.assert_array_equal(batch[..., 2], 1.0)


def test_gray_rgba_and_16bit_become_three_channels(files):
    kw = {"batch_size": 1, "img_shape": (16, 16), "shuffle": False, "normalize": False}
    (gray,) = _first(make_dataset([files["gray"]], **kw))
    (rgba,) = _first(make_dataset([files["rgba"]], **kw))
    (g16,) = _first(make_dataset([files["gray16"]], **kw))
    assert gray.dtype == np.uint8 and gray.shape == (1, 16, 16, 3)
    assert (np.abs(gray.astype(int) - 77) <= 1).all()  # JPEG quality 100
    np.testing.assert_array_equal(rgba[0, 0, 0], [0, 200, 0])  # B, G, R; alpha dropped
    np.testing.assert_array_equal(g16, 40000 >> 8)  # 16-bit -> 8-bit as OpenCV (x >> 8)


def test_resize_is_cv2_style_bilinear(files):
    src = _rgb_noise(40, 50, 0)[..., ::-1]  # BGR of noise.png
    (out,) = _first(
        make_dataset([files["noise"]], batch_size=1, img_shape=(24, 32), normalize=False)
    )
    ref = _resize_ref(src, 24, 32)
    err = np.abs(out[0].astype(float) - ref)
    where = np.unravel_index(err.argmax(), err.shape)
    assert err.max() <= 0.5 + 1e-6, f"max err {err.max()} at {where}, mean {err.mean()}"


def test_random_crop_is_a_window_of_the_image(files):
    src = _rgb_noise(40, 50, 0)[..., ::-1]
    ds = make_dataset(
        [files["noise"]],
        batch_size=1,
        img_shape=(16, 16),
        random_crop=True,
        normalize=False,
        seed=3,
    )
    corners = set()
    for (crop,) in _first(ds, 12):
        hits = [
            (t, le)
            for t in range(40 - 16 + 1)
            for le in range(50 - 16 + 1)
            if np.array_equal(src[t : t + 16, le : le + 16], crop)
        ]
        assert len(hits) == 1, "a large image is cropped without resizing"
        corners.add(hits[0])
    assert len(corners) > 6  # the position is random


def test_random_crop_upscales_small_images(tmp_path):
    src = _rgb_noise(10, 20, 1)
    path = _save(tmp_path / "small.png", src)
    ds = make_dataset(
        [path], batch_size=1, img_shape=(16, 16), random_crop=True, normalize=False, seed=0
    )
    # scale max(16/10, 16/20) = 1.6 -> 16 x 32, then a 16 x 16 window (top 0, left 0..16)
    up = _resize_ref(src[..., ::-1], 16, 32)
    lefts = set()
    for (crop,) in _first(ds, 10):
        errs = [np.abs(crop.astype(float) - up[:, le : le + 16]).max() for le in range(17)]
        assert min(errs) <= 0.5 + 1e-6, min(errs)
        lefts.add(int(np.argmin(errs)))
    assert len(lefts) > 3


def _variants(image):
    """(channel order, mirrored) -> image, for all 12 flips x permutations of ``image``."""
    out = {}
    for order in itertools.permutations(range(3)):
        for mirrored in (False, True):
            out[order, mirrored] = (image[:, ::-1] if mirrored else image)[..., list(order)]
    return out


def test_flip_and_channel_shuffle_draw_every_variant_and_leave_pixels_alone(files):
    kw = dict(batch_size=1, img_shape=(16, 16), random_crop=True, normalize=False, seed=5)
    plain = [c for (c,) in _first(make_dataset([files["noise"]], **kw), 60)]
    augmented = _first(
        make_dataset([files["noise"]], random_flip=True, random_channel_shuffle=True, **kw), 60
    )
    seen = set()
    for crop, (aug,) in zip(plain, augmented, strict=True):
        hits = [key for key, v in _variants(crop).items() if np.array_equal(v, aug)]
        assert len(hits) == 1, "an augmented crop is the same crop, mirrored and / or reordered"
        seen.add(hits[0])
    assert len(seen) >= 10  # 12 variants, drawn at random
    assert {mirrored for _, mirrored in seen} == {False, True}


def test_flip_mirrors_the_edge_map_with_its_image(tmp_path):
    image = _rgb_noise(16, 16, 7)
    edge = np.zeros((16, 16), np.uint8)
    edge[:, :3] = 255  # a band on the left
    path = _save(tmp_path / "a.png", image)
    _save(tmp_path / "a_edge.jpg", edge, quality=100)
    ds = make_dataset(
        [path],
        batch_size=1,
        img_shape=(16, 16),
        guided=True,
        normalize=False,
        seed=2,
        random_flip=True,
    )
    mirrored = set()
    for images, edges in _first(ds, 20):
        flipped = np.array_equal(images[0], image[:, ::-1, ::-1])
        assert flipped or np.array_equal(images[0], image[..., ::-1])
        band_right = edges[0, :, -3:, 0].mean() > 0.5 and edges[0, :, :3, 0].mean() < 0.5
        band_left = edges[0, :, :3, 0].mean() > 0.5 and edges[0, :, -3:, 0].mean() < 0.5
        assert band_right if flipped else band_left
        mirrored.add(flipped)
    assert mirrored == {False, True}


def test_same_seed_same_batches_other_seed_other_batches(files):
    paths = [files[k] for k in ("red", "gray", "rgba", "noise")]

    def batches(seed):
        ds = make_dataset(paths, batch_size=2, img_shape=(16, 16), random_crop=True, seed=seed)
        return np.concatenate(_first(ds, 4))

    a, b, c = batches(7), batches(7), batches(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_corrupt_and_missing_files_are_skipped_and_named_once(files, tmp_path, caplog):
    flist = _flist(
        tmp_path / "train.flist",
        [files["red"], files["corrupt"], files["gray"], str(tmp_path / "missing.png")],
    )
    ds = make_dataset(flist, batch_size=2, img_shape=(16, 16), seed=1)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        batches = _first(ds, 6)  # 12 images = 6 epochs of the 2 good files
    assert all(b.shape == (2, 16, 16, 3) for b in batches)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum(files["corrupt"] in m for m in messages) == 1, messages
    assert sum("missing.png" in m and "does not exist" in m for m in messages) == 1, messages
    assert len(messages) == 2


def test_all_files_unreadable_stops_instead_of_spinning(files, tmp_path):
    bad2 = _write(tmp_path / "bad2.jpg", b"\xff\xd8\xff garbage")
    ds = make_dataset([files["corrupt"], bad2], batch_size=1, img_shape=(8, 8), seed=0)
    with pytest.raises(tf.errors.OpError, match="all 2 training images are unreadable"):
        _first(ds)


def test_flist_relative_paths_blank_lines_and_base(files, tmp_path, monkeypatch):
    sub = tmp_path / "lists"
    sub.mkdir()
    flist = _flist(sub / "train.flist", ["", "red.png", "  ", "gray.jpg  ", ""])
    monkeypatch.chdir(tmp_path)  # the original: relative to the working directory
    assert read_flist(flist) == [files["red"], files["gray"]]
    (batch,) = _first(make_dataset(flist, batch_size=2, img_shape=(8, 8), shuffle=False))
    assert batch.shape == (2, 8, 8, 3)
    # relative_to="flist": resolved against the flist's folder (where nothing exists)
    assert read_flist(flist, relative_to="flist") == [str(sub / "red.png"), str(sub / "gray.jpg")]
    with pytest.raises(ConfigError, match="none of its 2 files exists"):
        make_dataset(flist, batch_size=1, relative_to="flist")


def test_empty_or_missing_sources_are_config_errors(tmp_path):
    empty = _flist(tmp_path / "empty.flist", ["", "   "])
    with pytest.raises(ConfigError, match="lists no image paths") as e:
        make_dataset(empty, batch_size=1)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="no such file list, folder or glob"):
        make_dataset(str(tmp_path / "nope.flist"), batch_size=1)
    with pytest.raises(ConfigError, match="no images"):
        make_dataset(str(tmp_path / "*.png"), batch_size=1)
    with pytest.raises(ConfigError, match="img_shapes"):
        make_dataset([str(tmp_path)], batch_size=1, img_shape=(8, 8, 4))
    with pytest.raises(ConfigError, match="batch_size"):
        make_dataset([str(tmp_path)], batch_size=0)


def test_folder_and_glob_sources(files, tmp_path):
    nested = tmp_path / "nested"
    nested.mkdir()
    extra = _save(nested / "deep.png", _rgb_noise(8, 8, 2))
    _save(tmp_path / "red_edge.jpg", np.zeros((20, 24), np.uint8))  # edge map of red.png
    (tmp_path / "notes.txt").write_text("not an image")
    found = list_images(tmp_path)
    assert extra in found and files["corrupt"] in found
    assert not any(p.endswith(("_edge.jpg", ".txt")) for p in found)
    assert list_images(str(tmp_path / "*.jpg")) == [files["gray"]]
    (b,) = _first(make_dataset(str(tmp_path / "**" / "*.png"), batch_size=3, img_shape=(8, 8)))
    assert b.shape == (3, 8, 8, 3)


def test_guided_edges(tmp_path, caplog):
    edge = np.zeros((20, 20), np.uint8)
    edge[:, 10:] = 255  # right half is an edge
    a = _save(tmp_path / "a.png", _rgb_noise(20, 20, 3))
    _save(tmp_path / "a_edge.jpg", edge, quality=100)
    b = _save(tmp_path / "b.png", _rgb_noise(20, 20, 4))  # no b_edge.jpg
    ds = make_dataset([a, b], batch_size=2, img_shape=(20, 20), guided=True, seed=0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ((images, edges),) = _first(ds)
    assert images.shape == (2, 20, 20, 3) and edges.shape == (2, 20, 20, 1)
    assert edges.dtype == np.float32 and set(np.unique(edges)) <= {0.0, 1.0}
    np.testing.assert_array_equal(edges[:, :, :10], 0.0)  # threshold 0.6 of channel 0 / 255
    np.testing.assert_array_equal(edges[:, :, 11:], 1.0)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(messages) == 1 and "b_edge.jpg does not exist" in messages[0]
    # random crops keep the edge map aligned with its image
    ds = make_dataset(
        [a],
        batch_size=1,
        img_shape=(8, 8),
        guided=True,
        random_crop=True,
        seed=2,
        edge_threshold=None,
    )
    for _, e in _first(ds, 5):
        assert e.shape == (1, 8, 8, 1) and e.max() <= 1.0


def test_tfds_missing_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import now fails
    with pytest.raises(ConfigError, match="tensorflow_datasets.*not installed"):
        make_dataset("tfds:places365_small:train", batch_size=2)
    with pytest.raises(ConfigError, match="TFDS sources have none"):
        make_dataset("tfds:places365_small", batch_size=2, guided=True)


def test_tfds_source_with_a_stub_module(monkeypatch):
    """The TFDS branch, without tensorflow_datasets: a stub records the call, serves RGB."""
    import types

    calls = {}

    def load(name, **kw):
        calls.update(kw, name=name)
        red = np.zeros((2, 20, 30, 3), np.uint8)
        red[..., 0] = 255
        return tf.data.Dataset.from_tensor_slices({"image": red, "label": [0, 1]})

    stub = types.SimpleNamespace(
        load=load,
        ReadConfig=lambda **kw: ("read_config", kw),
        download=types.SimpleNamespace(DownloadConfig=lambda **kw: ("download_config", kw)),
    )
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", stub)
    ds = make_dataset(
        "tfds:places365_small:validation",
        batch_size=2,
        img_shape=(8, 8),
        seed=3,
        data_dir="/data/tfds",
        manual_dir="/data/manual",
    )
    (batch,) = _first(ds)
    assert batch.shape == (2, 8, 8, 3)
    np.testing.assert_array_equal(batch[..., 2], 1.0)  # red is the last channel (BGR)
    np.testing.assert_array_equal(batch[..., :2], -1.0)
    assert calls["name"] == "places365_small" and calls["split"] == "validation"
    assert calls["data_dir"] == "/data/tfds" and calls["download"] is False
    dl_config = calls["download_and_prepare_kwargs"]["download_config"]
    assert dl_config == ("download_config", {"manual_dir": "/data/manual"})
    with pytest.raises(ConfigError, match="no feature 'picture'"):
        make_dataset("tfds:x", batch_size=1, image_key="picture")
