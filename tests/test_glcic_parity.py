"""GLCIC against the Torch7 oracle (../shared/oracles/glcic/completionnet): the .t7 loads,
inpaint.lua's preparation, the network output, the composite and the OpenCV post-process."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.families.glcic import postprocess, preprocess
from deepfill_tf.models.glcic import GLCICCompletionNet, GLCICDiscriminator, load_glcic_t7
from deepfill_tf.testing.harness import run_model_test
from deepfill_tf.testing.parity import assert_parity
from tests.conftest import oracle_path


@pytest.fixture(scope="module")
def oracle():
    folder = oracle_path("glcic") / "completionnet"
    image = np.asarray(Image.open(folder / "input.png").convert("RGB"))
    mask = np.asarray(Image.open(folder / "mask.png"))
    return {
        "folder": folder,
        "image_u8": image,
        "mask_u8": mask,
        "net_input": np.load(folder / "net_input.npy")[0].transpose(1, 2, 0),
        "net_output": np.load(folder / "net_output.npy")[0].transpose(1, 2, 0),
        "out": np.load(folder / "out.npy").transpose(1, 2, 0),
        "model": load_glcic_t7(folder / "completionnet.t7"),
    }


def _prepared(oracle):
    image = preprocess.image_to_float(oracle["image_u8"])
    mask = preprocess.mask_to_gray(oracle["mask_u8"])
    return preprocess.original_preprocess(image, mask, maxdim=600)


def test_preparation_is_exact(oracle):
    image, mask = _prepared(oracle)
    mean = np.asarray(oracle["model"].dataset_mean)
    np.testing.assert_array_equal(mean, np.float32([0.456, 0.4472, 0.4155]))
    np.testing.assert_array_equal(preprocess.network_input(image, mask, mean), oracle["net_input"])
    # The in-graph preparation (used by export) computes the same.
    in_graph = oracle["model"].prepare_input(image[None], mask[None, ..., None])
    np.testing.assert_array_equal(np.asarray(in_graph)[0], oracle["net_input"])


def test_network_output(oracle):
    out = oracle["model"](oracle["net_input"][None], training=False)
    assert_parity(np.asarray(out)[0], oracle["net_output"], 1e-4, "GLCIC net_output")


def test_composite(oracle):
    image, mask = _prepared(oracle)
    comp, _ = oracle["model"].complete(image[None], mask[None, ..., None])
    comp = np.asarray(comp)[0]
    hole = mask > 0
    assert_parity(comp[hole], oracle["out"][hole], 1e-4, "GLCIC composite (hole)")
    np.testing.assert_array_equal(comp[~hole], oracle["out"][~hole])
    rounded = np.round(np.clip(comp, 0, 1) * 255).astype(np.uint8)
    ref = np.asarray(Image.open(oracle["folder"] / "out_u8.png"))
    assert_parity(rounded, ref, 1, "out_u8.png")
    saved = postprocess.to_u8_truncated(comp)
    ref = np.asarray(Image.open(oracle["folder"] / "out_u8_imagesave.png"))
    assert_parity(saved, ref, 1, "out_u8_imagesave.png")


def test_postprocess_from_oracle_composite_is_exact(oracle):
    mask = preprocess.mask_to_gray(oracle["mask_u8"]) >= 0.2
    assert postprocess.hole_centre(mask) == (66, 49)  # the MANIFEST's p
    blend, telea = postprocess.original_postprocess(oracle["out"], mask, return_telea=True)
    folder = oracle["folder"]
    np.testing.assert_array_equal(telea, np.asarray(Image.open(folder / "postproc_telea_u8.png")))
    np.testing.assert_array_equal(blend, np.asarray(Image.open(folder / "postproc_u8.png")))


def test_postprocess_from_our_composite(oracle):
    image, mask = _prepared(oracle)
    comp, _ = oracle["model"].complete(image[None], mask[None, ..., None])
    blend = postprocess.original_postprocess(np.asarray(comp)[0], mask)
    ref = np.asarray(Image.open(oracle["folder"] / "postproc_u8.png"))
    diff = np.abs(blend.astype(int) - ref)
    print(f"postproc_u8.png: max diff {diff.max()}, {np.mean(diff <= 1):.4%} within +-1")
    assert diff.max() <= 2 and np.mean(diff <= 1) >= 0.99


# --------------------------------------------------------------------------------------------
# Pure functions of the preparation.


def test_torch_scale_bilinear_known_values():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(preprocess.torch_scale_bilinear(x, 4, 3), x)
    # Downscaling by 2 averages 2x2 blocks (torch/image's area branch).
    y = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(
        preprocess.torch_scale_bilinear(y, 2, 2), [[2.5, 4.5], [10.5, 12.5]], atol=1e-6
    )
    # Upscaling aligns the corners: 3 -> 5 samples at 0, 0.5, 1, 1.5, 2.
    z = np.float32([[0, 10, 20]])
    np.testing.assert_allclose(
        preprocess.torch_scale_bilinear(z, 5, 1), [[0, 5, 10, 15, 20]], atol=1e-5
    )
    # 3 -> 2 samples: intervals [0, 1.5) and [1.5, 3): (0 + 0.5*10) / 1.5, (0.5*10 + 20) / 1.5.
    np.testing.assert_allclose(
        preprocess.torch_scale_bilinear(z, 2, 1), [[10 / 3, 50 / 3]], atol=1e-5
    )
    rgb = np.random.default_rng(0).uniform(size=(7, 9, 3)).astype(np.float32)
    out = preprocess.torch_scale_bilinear(rgb, 12, 4)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], preprocess.torch_scale_bilinear(rgb[..., c], 12, 4))


def test_original_sizes():
    assert preprocess.original_sizes(96, 128) == (96, 128)
    assert preprocess.original_sizes(97, 130) == (96, 132)  # 32.5 rounds up, as torch.round
    assert preprocess.original_sizes(1000, 750) == (600, 452)  # cap, then 112.5 -> 113 * 4
    assert preprocess.original_sizes(400, 1200) == (200, 600)


def test_original_preprocess_caps_and_binarises():
    rng = np.random.default_rng(1)
    image = rng.uniform(size=(50, 130, 3)).astype(np.float32)
    mask = np.zeros((50, 130), np.float32)
    mask[10:30, 40:80] = 1
    img, m = preprocess.original_preprocess(image, mask, maxdim=64)
    assert img.shape == (24, 64, 3) and m.shape == (24, 64)
    assert set(np.unique(m)) == {0.0, 1.0}
    # The >= 0.2 threshold after resizing grows the hole slightly.
    assert m.mean() >= mask.mean()


def test_preprocess_bad_inputs():
    from deepfill_tf.errors import InputError

    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(InputError, match="mask is 16x32 but the image is 32x32"):
        preprocess.original_preprocess(image, np.zeros((32, 16), np.float32))
    with pytest.raises(InputError, match="minimum side of 8 px"):
        preprocess.original_preprocess(np.zeros((4, 40, 3)), np.zeros((4, 40)))
    with pytest.raises(InputError, match="no hole pixels"):
        postprocess.hole_centre(np.zeros((8, 8)))


def test_mask_to_gray_and_padding():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = [255, 0, 0]
    np.testing.assert_allclose(preprocess.mask_to_gray(rgba), np.full((4, 4), 0.299), atol=1e-6)
    image = np.arange(5 * 6 * 3, dtype=np.float32).reshape(5, 6, 3)
    mask = np.ones((5, 6), np.float32)
    padded, pmask, size = preprocess.pad_to_multiple(image, mask)
    assert padded.shape == (8, 8, 3) and size == (5, 6)
    np.testing.assert_array_equal(padded[:5, :6], image)
    assert pmask[5:].sum() == 0 and pmask[:, 6:].sum() == 0


# --------------------------------------------------------------------------------------------
# The Keras models.


def test_completion_net_harness():
    x = np.random.default_rng(2).normal(size=(2, 32, 40, 4)).astype(np.float32)
    (out,) = run_model_test(GLCICCompletionNet.tiny, x, (2, 32, 40, 3))
    assert 0 < out.min() and out.max() < 1


def test_completion_net_published_size():
    model = GLCICCompletionNet()
    model.build((None, None, None, 4))
    widths = [c.filters for c in model.convs]
    assert widths == [64, 128, 128, 256] + [256] * 8 + [128, 128, 64, 32, 3]
    assert [c.dilation for c in model.convs][4:12] == [1, 1, 2, 4, 8, 16, 1, 1]
    assert len(model.torch7_slots()) == 50


def test_completion_net_rejects_other_sizes():
    with pytest.raises(ValueError, match="divisible by 4"):
        GLCICCompletionNet.tiny()(np.zeros((1, 30, 32, 4), np.float32))


def test_discriminator():
    d = GLCICDiscriminator.tiny()
    rng = np.random.default_rng(3)
    g = rng.uniform(size=(2, 64, 64, 3)).astype(np.float32)
    lo = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
    out = d([g, lo], training=False)
    assert tuple(out.shape) == (2, 1)
    # Published widths: 6 global convs end at 4x4x512 on 256x256, 5 local ones on 128x128.
    full = GLCICDiscriminator()
    full([np.zeros((1, 256, 256, 3), np.float32), np.zeros((1, 128, 128, 3), np.float32)])
    assert tuple(full.global_fc.kernel.shape) == (4 * 4 * 512, 1024)
    assert tuple(full.local_fc.kernel.shape) == (4 * 4 * 512, 1024)
    assert tuple(full.concat_fc.kernel.shape) == (2048, 1)
