"""Context Encoder against the Torch7 oracle (../shared/oracles/glcic/context_encoder): both
netG files (current and pre-2016 nn layout), demo.lua's centre fill, output and composite."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.models.context_encoder import (
    ContextEncoderDiscriminator,
    ContextEncoderGenerator,
    fill_centre,
    load_context_encoder_t7,
    paste_centre,
)
from deepfill_tf.testing.harness import run_model_test
from deepfill_tf.testing.parity import assert_parity
from tests.conftest import oracle_path


@pytest.fixture(scope="module")
def oracle():
    folder = oracle_path("glcic") / "context_encoder"
    image = np.asarray(Image.open(folder / "input.png").convert("RGB"))
    return {
        "folder": folder,
        "image": image.astype(np.float32) * np.float32(1 / 255) * 2 - 1,
        "net_input": np.load(folder / "net_input.npy").transpose(0, 2, 3, 1),
        "net_output": np.load(folder / "net_output.npy").transpose(0, 2, 3, 1),
        "composite": np.load(folder / "composite.npy").transpose(1, 2, 0),
    }


def test_centre_fill_is_exact(oracle):
    filled = np.asarray(fill_centre(oracle["image"][None], overlap=4))
    np.testing.assert_array_equal(filled, oracle["net_input"])
    real = np.load(oracle["folder"] / "real_center.npy").transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(oracle["image"][None, 32:96, 32:96], real)


@pytest.mark.parametrize("name", ["netG.t7", "netG_legacyBN.t7"])
def test_network_output(oracle, name):
    model = load_context_encoder_t7(oracle["folder"] / name)
    assert (model.nef, model.ngf, model.bottleneck, model.channels) == (16, 16, 100, 3)
    out = np.asarray(model(oracle["net_input"], training=False))
    assert_parity(out, oracle["net_output"], 1e-4, f"Context Encoder {name}")


def test_composite(oracle):
    model = load_context_encoder_t7(oracle["folder"] / "netG.t7")
    pred = model(oracle["net_input"], training=False)
    comp = (np.asarray(paste_centre(oracle["image"][None], pred, overlap=4))[0] + 1) * 0.5
    inside = np.zeros((128, 128), bool)
    inside[36:92, 36:92] = True
    assert_parity(comp[inside], oracle["composite"][inside], 1e-4, "composite (region)")
    np.testing.assert_allclose(comp[~inside], oracle["composite"][~inside], atol=1e-7)
    ref = np.asarray(Image.open(oracle["folder"] / "composite_u8.png"))
    assert_parity(np.round(comp * 255).astype(np.uint8), ref, 1, "composite_u8.png")
    centre = np.round((np.asarray(pred)[0] + 1) / 2 * 255).astype(np.uint8)
    ref = np.asarray(Image.open(oracle["folder"] / "pred_center_u8.png"))
    assert_parity(centre, ref, 1, "pred_center_u8.png")


def test_generator_harness_and_sizes():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 128, 128, 3)).astype(np.float32)
    (out,) = run_model_test(ContextEncoderGenerator.tiny, x, (2, 64, 64, 3))
    assert np.abs(out).max() <= 1
    with pytest.raises(ValueError, match=r"takes \(B, 128, 128, 3\) inputs"):
        ContextEncoderGenerator.tiny()(np.zeros((1, 96, 96, 3), np.float32))


def test_published_widths():
    model = ContextEncoderGenerator()
    model.build((None, 128, 128, 3))
    assert [c.filters for c in model.enc_convs] == [64, 64, 128, 256, 512]
    assert model.enc_bottleneck.filters == 4000
    assert [c.filters for c in model.dec_convs] == [512, 256, 128, 64]
    assert len(model.torch7_slots()) == 31


def test_discriminator():
    d = ContextEncoderDiscriminator.tiny()
    x = np.random.default_rng(1).uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
    assert tuple(d(x, training=False).shape) == (3, 1)
    with pytest.raises(ValueError, match="64, 64, 3"):
        d(np.zeros((1, 128, 128, 3), np.float32))


def test_random_region_variant(tmp_path):
    from deepfill_tf.testing import torch7 as w

    gen = ContextEncoderGenerator(nef=4, ngf=4, bottleneck=8, region="random")
    x = np.random.default_rng(2).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    assert tuple(gen(x).shape) == (1, 128, 128, 3)
    assert len(gen.torch7_slots()) == 34
    w.randomize_weights(gen, seed=6)
    path = tmp_path / "random.t7"
    w.write_t7(path, w.context_encoder_to_t7(gen))
    loaded = load_context_encoder_t7(path)
    assert loaded.region == "random"
    np.testing.assert_allclose(gen(x), loaded(x), atol=1e-5)
    d = ContextEncoderDiscriminator(ndf=4, input_size=128)
    assert tuple(d(x).shape) == (1, 1) and len(d.convs) == 5
