"""SCFEGANGenerator and its demo inputs: parity with the original model.py / demo.py."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import tensorflow as tf

from deepfill_tf.convert import load_tf1_checkpoint
from deepfill_tf.errors import CheckpointError, InputError
from deepfill_tf.families.scfegan.inputs import (
    composite_scfegan_output,
    make_scfegan_noise,
    prepare_scfegan_batch,
)
from deepfill_tf.models import SCFEGANGenerator
from deepfill_tf.testing import run_model_test
from deepfill_tf.testing.parity import assert_parity

GENERATOR_ATOL = 2e-4  # MANIFEST tolerance for generator_256.npz
PUBLISHED_CNUM = 64


def hashed_weight(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The MANIFEST's counter-based hash (splitmix64 of a per-name seed plus the element index)
    giving the weights the generator oracle was computed with."""
    mask64 = (1 << 64) - 1
    seed = zlib.crc32(name.encode()) + 1
    z = np.arange(int(np.prod(shape)), dtype=np.uint64)
    z = z + np.uint64((seed * 0x9E3779B97F4A7C15) & mask64)  # uint64 arrays wrap silently
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) / 2.0**53 * 2.0 - 1.0
    if len(shape) == 4:
        kh, kw, c_in, c_out = shape
        u = u * np.sqrt(3.0 / (kh * kw * (c_in + c_out) / 2.0))
    else:
        u = u * 0.1
    return u.reshape(shape).astype(np.float32)


def published_table(folder) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (folder / "generator_variables_512.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, shape = line.split("\t")
            rows.append((name, tuple(int(d) for d in shape.strip("()").split(",") if d.strip())))
    return rows


def table_of(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.tf1_variable_table().items()]


@pytest.fixture(scope="module")
def tiny():
    model = SCFEGANGenerator.tiny()
    model.build((1, 128, 128, 9))
    return model


def _tiny_input(batch=1, size=128, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, size=(batch, size, size, 9)).astype(np.float32)


# --- generator ---------------------------------------------------------------------------


def test_tiny_generator_harness():
    out = run_model_test(SCFEGANGenerator.tiny, _tiny_input(batch=2), (2, 128, 128, 3))[0]
    assert np.abs(out).max() <= 1.0


def test_returns_gate_of_the_last_layer(tiny):
    output, gate = tiny(_tiny_input(), return_gate=True)
    assert output.shape == gate.shape == (1, 128, 128, 3)
    assert float(tf.reduce_min(gate)) > 0 and float(tf.reduce_max(gate)) < 1


def test_gradients_reach_every_trainable_weight_and_the_input(tiny):
    x = tf.constant(_tiny_input())
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tiny(x) * tf.random.stateless_normal((1, 128, 128, 3), seed=[1, 2]))
    grads = tape.gradient(loss, [x, *tiny.trainable_weights])
    # biases2 of the bug-compatible deconvs has no effect and is therefore not trainable.
    assert len(tiny.trainable_weights) == 93 - 7
    for var, grad in zip(["input", *[w.path for w in tiny.trainable_weights]], grads, strict=True):
        assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0, f"no gradient: {var}"


def test_sizes_must_be_multiples_of_128(tiny):
    with pytest.raises(ValueError, match="divisible by 128"):
        tiny(np.zeros((1, 128, 192, 9), np.float32))
    with pytest.raises(ValueError, match=r"\(B, H, W, 9\)"):
        tiny(np.zeros((1, 128, 128, 4), np.float32))


def test_tf1_names_at_tiny_width_are_the_published_names_with_scaled_shapes(oracles, tiny):
    def scaled(shape):  # kernel sizes, the 9/12-channel inputs and the 3-channel outputs stay
        kernel, channels = (shape[:2], shape[2:]) if len(shape) == 4 else ((), shape)
        return (*kernel, *(c if c in (3, 9, 12) else c * 4 // 64 for c in channels))

    expected = [(name, scaled(shape)) for name, shape in published_table(oracles("scfegan"))]
    assert table_of(tiny) == expected


def test_loads_a_tf1_checkpoint_file_strictly(tmp_path, tiny):
    rng = np.random.default_rng(6)
    values = {
        k: rng.normal(size=v.shape).astype(np.float32) for k, v in tiny.tf1_variable_table().items()
    }
    # A training checkpoint holds more: optimiser slots and the discriminator.
    extra = {"generator/gconv1_ds/kernel/Adam": values["generator/gconv1_ds/kernel"]}
    extra["discriminator/conv1/kernel"] = np.zeros((3, 3, 8, 4), np.float32)
    names = [*values, *extra]
    tensors = [tf.constant(a) for a in [*values.values(), *extra.values()]]
    prefix = str(tmp_path / "SC-FEGAN.ckpt")
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )
    model = SCFEGANGenerator.tiny()
    model.build((1, 128, 128, 9))
    load_tf1_checkpoint(model, prefix)
    for name, var in model.tf1_variable_table().items():
        np.testing.assert_array_equal(np.asarray(var), values[name], err_msg=name)
    x = _tiny_input()
    assert not np.allclose(np.asarray(model(x)), np.asarray(tiny(x)))

    del values["generator/deconv4/biases2"]
    with pytest.raises(CheckpointError, match="missing generator/deconv4/biases2"):
        load_tf1_checkpoint(model, prefix, source={**values, **extra})


@pytest.fixture(scope="module")
def published_generator():
    model = SCFEGANGenerator(cnum=PUBLISHED_CNUM)
    model.build((1, 256, 256, 9))
    return model


def test_tf1_name_table_equals_the_published_variables(oracles, published_generator):
    table = table_of(published_generator)
    assert table == published_table(oracles("scfegan"))
    assert sum(int(np.prod(s)) for _, s in table) == 92_886_100


def test_generator_parity_with_hashed_weights(oracles, published_generator):
    data = np.load(oracles("scfegan") / "generator_256.npz")
    model = published_generator
    source = {k: hashed_weight(k, tuple(v.shape)) for k, v in model.tf1_variable_table().items()}
    load_tf1_checkpoint(model, "hashed-weights", source=source)

    image_rgb = data["image_bgr_uint8"][0, ..., ::-1]
    mask = data["mask_nhwc"][0]
    color_rgb = _color_u8_from_oracle(data["color_nhwc"][0], mask)[..., ::-1]
    batch = prepare_scfegan_batch(
        image_rgb, mask, data["sketch_nhwc"][0], color_rgb, noise=data["noise_nhwc"][0]
    )
    output = np.asarray(model(batch))
    assert_parity(output, data["generator_tanh_output_nhwc"], GENERATOR_ATOL, "generator_256")

    result = composite_scfegan_output(output, batch)
    image = data["image_bgr_uint8"].astype(np.float32) / 127.5 - 1
    complete = output * data["mask_nhwc"] + image * (1 - data["mask_nhwc"])
    expected = ((complete + 1) * 127.5).astype(np.uint8)[..., ::-1]
    assert np.abs(result.astype(int) - expected).max() <= 1


# --- demo inputs -------------------------------------------------------------------------


def _color_u8_from_oracle(color_bgr, mask):
    """Stroke map (BGR uint8, black background) that the oracle's colour channels came from."""
    return np.where(mask > 0, np.round((color_bgr + 1) * 127.5), 0).astype(np.uint8)


def test_prepare_batch_reproduces_the_oracle_input(oracles):
    data = np.load(oracles("scfegan") / "generator_256.npz")
    mask = data["mask_nhwc"][0]
    batch = prepare_scfegan_batch(
        data["image_bgr_uint8"][0, ..., ::-1],
        mask[..., 0] > 0,
        data["sketch_nhwc"][0, ..., 0] * 255,
        _color_u8_from_oracle(data["color_nhwc"][0], mask)[..., ::-1],
        noise=data["noise_nhwc"][0],
    )
    image = data["image_bgr_uint8"].astype(np.float32) / 127.5 - 1
    expected = np.concatenate(
        [
            image * (1 - data["mask_nhwc"]),
            data["sketch_nhwc"],
            data["color_nhwc"],
            data["mask_nhwc"],
            data["noise_nhwc"],
        ],
        axis=-1,
    )
    assert batch.dtype == np.float32
    # float64-then-float32 (the demo) vs float32 arithmetic (the oracle): one ulp at most.
    assert_parity(batch, expected, 1e-7, "9-channel input")


def test_prepare_batch_semantics():
    size = 128
    image = np.full((size, size, 3), (10, 20, 30), np.uint8)  # RGB
    mask = np.zeros((size, size), np.uint8)
    mask[32:96, 32:96] = 255
    sketch = np.zeros((size, size, 3), np.uint8)
    sketch[0, :] = 255  # outside the hole: dropped
    sketch[40, 32:96] = 255
    color = np.zeros((size, size, 3), np.uint8)
    color[50:54, 40:90] = (255, 0, 0)  # a red stroke
    batch = prepare_scfegan_batch(image, mask, sketch, color, seed=3)[0]
    hole = mask > 0
    assert batch.shape == (size, size, 9)
    bgr = np.array([30, 20, 10]) / 127.5 - 1
    np.testing.assert_allclose(
        batch[~hole][:, :3], np.broadcast_to(bgr, (int((~hole).sum()), 3)), atol=1e-7
    )
    assert (batch[hole][:, :3] == 0).all()
    assert batch[..., 3].sum() == 64 and (batch[40, 32:96, 3] == 1).all()
    np.testing.assert_array_equal(batch[52, 60, 4:7], [-1, -1, 1])  # BGR
    assert (batch[60, 60, 4:7] == -1).all() and (batch[~hole][:, 3:] == 0).all()
    np.testing.assert_array_equal(batch[..., 7], hole)
    assert set(np.unique(batch[..., 8])) <= {0.0, 1.0} and batch[..., 8].sum() > 0
    no_guides = prepare_scfegan_batch(image, mask, seed=3)[0]
    assert (no_guides[..., 3] == 0).all() and (no_guides[hole][:, 4:7] == -1).all()
    np.testing.assert_array_equal(no_guides[..., 8], batch[..., 8])


def test_noise_is_seeded_binary_and_about_16_percent():
    a = make_scfegan_noise(256, 256, seed=1)
    np.testing.assert_array_equal(a, make_scfegan_noise(256, 256, seed=1))
    assert not np.array_equal(a, make_scfegan_noise(256, 256, seed=2))
    assert a.dtype == np.float32 and set(np.unique(a)) == {0.0, 1.0}
    assert abs(a.mean() - 0.159) < 0.01  # P(N(0, 255^2) >= 254.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_rgb_u8=np.zeros((100, 128, 3), np.uint8)), "multiples of 128"),
        (dict(image_rgb_u8=np.zeros((128, 128, 3), np.float32)), "uint8 RGB"),
        (dict(hole_mask=np.zeros((128, 256))), "mask is 256x128 but the image is 128x128"),
        (dict(sketch=np.zeros((128, 128, 2))), "sketch must be"),
        (dict(color=np.zeros((128, 128, 3), np.uint8)[:64]), "color is 128x64"),
    ],
)
def test_prepare_batch_errors(kwargs, message):
    args = dict(image_rgb_u8=np.zeros((128, 128, 3), np.uint8), hole_mask=np.ones((128, 128)))
    with pytest.raises(InputError, match=message):
        prepare_scfegan_batch(**{**args, **kwargs})


def test_composite_as_the_demo_and_with_known_pixels_kept():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
    mask = np.zeros((128, 128), np.float32)
    mask[:, 64:] = 1
    batch = prepare_scfegan_batch(image, mask, seed=0)
    generated = rng.uniform(-1, 1, size=(1, 128, 128, 3)).astype(np.float32)

    demo = composite_scfegan_output(generated, batch)
    complete = generated * batch[..., 7:8] + batch[..., :3]
    np.testing.assert_array_equal(demo, ((complete + 1) * 127.5).astype(np.uint8)[..., ::-1])
    known = np.abs(demo[0, :, :64].astype(int) - image[:, :64])
    assert known.max() <= 1  # the demo's float round trip may lower a known pixel by one level

    kept = composite_scfegan_output(generated, batch, image)
    np.testing.assert_array_equal(kept[0, :, :64], image[:, :64])
    hole = np.round((generated[0, :, 64:, ::-1] + 1) * 127.5).astype(np.uint8)
    np.testing.assert_array_equal(kept[0, :, 64:], hole)
    with pytest.raises(InputError, match="batch must be"):
        composite_scfegan_output(generated, batch[..., :8])
