"""Strategies for large photos (original / resize / crop) and bounded-memory attention at the
model level: known pixels byte-identical, output at the input's size, crop == the model on
the crop, chunked == single-pass attention, guard rails and their messages."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from deepfill_tf.errors import InputError
from deepfill_tf.inference.hd_strategy import (
    HDOptions,
    check_applicable,
    inpaint_hd,
    plan_crops,
    resize_size,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
DEMO = REPO / "checkpoints" / "demo"


def _photo(h, w, seed=0):
    """A smooth colour image with some texture (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 13 + y / 29)], -1) * 200
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


class FakeModel:
    """``infer`` that paints every pixel (known ones too) with a function of its input, and
    records the sizes it was called with; ``batch`` runs a stack."""

    def __init__(self, batch=True):
        self.calls = []
        if not batch:
            self.batch = None

    def __call__(self, image, hole):
        assert image.dtype == np.uint8 and image.ndim == 3 and hole.shape == image.shape[:2]
        self.calls.append(image.shape[:2])
        mean = image[hole < 0.5].mean(axis=0) if (hole < 0.5).any() else np.full(3, 128.0)
        return np.broadcast_to(255 - mean.astype(np.uint8), image.shape).copy()

    def batch(self, images, holes):
        self.calls.append(("batch", len(images)) + images.shape[1:3])
        return np.stack([self(i, h) for i, h in zip(images, holes, strict=True)])


def _strokes(h, w, seed, n=6):
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.float32)
    for _ in range(n):
        y, x = rng.integers(0, h - 40), rng.integers(0, w - 60)
        m[y : y + 3, x : x + 60] = 1
        m[y : y + 40, x : x + 2] = 1
    return m


# ------------------------------------------------------ (b) known pixels and output size
@pytest.mark.parametrize("strategy", ["original", "resize", "crop"])
@pytest.mark.parametrize("mask", ["box", "strokes", "border", "empty"])
def test_known_pixels_byte_identical_and_input_size(strategy, mask):
    h, w = 300, 420
    image = _photo(h, w, seed=1)
    hole = np.zeros((h, w), np.float32)
    if mask == "box":
        hole[100:180, 150:260] = 1
    elif mask == "strokes":
        hole = _strokes(h, w, seed=2)
    elif mask == "border":  # touching two borders: the crop must shift inward
        hole[0:40, 380:420] = 1
    options = HDOptions(strategy=strategy, trigger=128, resize_limit=200, crop_margin=32)
    result = inpaint_hd(FakeModel(), image, hole, options)
    assert result.image.shape == image.shape and result.image.dtype == np.uint8
    if result.strategy == "original":  # the model's own output (its composite keeps pixels)
        np.testing.assert_array_equal(result.image, FakeModel()(image, hole))
        return
    known = hole < 0.5
    np.testing.assert_array_equal(result.image[known], image[known])
    if hole.any():  # the fake model paints every hole pixel
        assert (result.image[~known] != image[~known]).any()
    assert result.strategy == strategy or _fell_back(result, strategy)


def _fell_back(result, strategy):
    """crop gives way to resize (or the whole image when it is small enough) when its crops
    would cover most of the image, and says so."""
    return (
        strategy == "crop"
        and result.strategy in ("resize", "original")
        and any("instead of crop" in n for n in result.notes)
    )


def test_demo_model_every_strategy_keeps_known_pixels():
    """The same with the bundled demo model, through the inference facade."""
    from deepfill_tf.inference import load_inpainter

    infer = load_inpainter(str(DEMO))
    h, w = 136, 200
    image = _photo(h, w, seed=3)
    hole = _strokes(h, w, seed=4, n=3)
    hole[40:80, 90:130] = 1
    for strategy in ("original", "resize", "crop"):
        options = HDOptions(strategy=strategy, trigger=64, resize_limit=96, crop_margin=16)
        out = inpaint_hd(infer, image, hole, options)
        assert out.image.shape == image.shape, strategy
        np.testing.assert_array_equal(out.image[hole < 0.5], image[hole < 0.5], strategy)
        assert out.strategy == strategy or _fell_back(out, strategy)


# ------------------------------------------------ (c) crop == the model run on that crop
def test_crop_equals_the_model_on_that_crop():
    from deepfill_tf.inference import load_inpainter

    infer = load_inpainter(str(DEMO))
    h, w = 240, 360
    image = _photo(h, w, seed=5)
    hole = np.zeros((h, w), np.float32)
    hole[150:190, 40:90] = 1  # near the bottom-left: the crop shifts inward
    hole[160:170, 100:110] = 1  # a nearby second region: merged into the same crop
    options = HDOptions(strategy="crop", trigger=128, crop_margin=24)
    _, plans = plan_crops(hole, options)
    assert len(plans) == 1, "test setup: both regions in one crop"
    (x0, y0, x1, y1), _, _ = plans[0]
    assert (x1 - x0) % 8 == 0 and (y1 - y0) % 8 == 0 and y1 <= h and x0 >= 0
    got = inpaint_hd(infer, image, hole, options)
    want = image.copy()
    crop = infer(image[y0:y1, x0:x1], hole[y0:y1, x0:x1])
    region = hole[y0:y1, x0:x1] > 0.5
    want[y0:y1, x0:x1][region] = crop[region]
    np.testing.assert_array_equal(got.image, want)
    assert [r.how for r in got.runs] == ["crop"] and got.runs[0].box == (x0, y0, x1, y1)


# ----------------------------------------------- (a) bounded attention at the model level
def test_chunked_attention_gives_the_same_inpainting():
    """The tiny DeepFill v2 generator with the attention chunked (a budget far below the
    single pass) gives the same refined output as the single pass."""
    import tensorflow as tf

    from deepfill_tf.models.deepfill_generator import DeepFillV2Generator

    gen = DeepFillV2Generator(cnum=8)
    gen.build_for(64, 64)
    rng = np.random.default_rng(6)
    x = tf.constant(rng.uniform(-1, 1, (1, 96, 128, 3)), tf.float32)
    m = np.zeros((1, 96, 128, 1), np.float32)
    m[:, 30:70, 40:90] = 1
    want = gen(x, m)[1].numpy()
    gen.contextual_attention.max_attention_mb = 1e-3
    got = gen(x, m)[1].numpy()
    gen.contextual_attention.max_attention_mb = None
    err = np.abs(got - want).max()
    print(f"chunked vs single pass x2: max abs error {err:.3g}")
    assert err < 1e-5


# ------------------------------------------------------------------------- crop planning
def test_nearby_regions_merge_and_far_ones_do_not():
    hole = np.zeros((400, 800), np.float32)
    hole[100:120, 100:120] = 1
    hole[100:120, 150:170] = 1  # 30 px away: merged
    hole[300:320, 700:720] = 1  # far: its own crop
    _, plans = plan_crops(hole, HDOptions(crop_margin=32))
    assert sorted(len(p[2]) for p in plans) == [1, 2]
    for crop, region_boxes, _ in plans:
        for b in region_boxes:  # every region inside its crop, with context where possible
            assert crop[0] <= b[0] and crop[1] <= b[1] and b[2] <= crop[2] and b[3] <= crop[3]


def test_crop_shifts_inward_at_the_border_and_keeps_its_size():
    hole = np.zeros((300, 300), np.float32)
    hole[0:10, 290:300] = 1  # top-right corner
    ((crop, _, _),) = plan_crops(hole, HDOptions(crop_margin=40))[1]
    assert crop == (300 - 96, 0, 300, 96)  # 10 + 2 * 40 = 90 -> 96, shifted inside


def test_equal_size_crops_run_as_one_batch():
    hole = np.zeros((600, 900), np.float32)
    for y, x in [(50, 50), (50, 700), (450, 400)]:
        hole[y : y + 40, x : x + 40] = 1
    model = FakeModel()
    out = inpaint_hd(model, _photo(600, 900), hole, HDOptions(trigger=256, crop_margin=48))
    assert model.calls[0] == ("batch", 3, 136, 136) and len(out.runs) == 3
    unbatched = inpaint_hd(
        FakeModel(batch=False), _photo(600, 900), hole, HDOptions(trigger=256, crop_margin=48)
    )
    np.testing.assert_array_equal(out.image, unbatched.image)


# ------------------------------------------------------------------------- resize
def test_resize_keeps_thin_strokes_and_scales_the_long_side():
    h, w = 480, 1000
    hole = np.zeros((h, w), np.float32)
    hole[200, 100:900] = 1  # one pixel high: must not vanish at 1/4 scale
    model = FakeModel()
    out = inpaint_hd(
        model, _photo(h, w), hole, HDOptions(strategy="resize", trigger=256, resize_limit=250)
    )
    assert model.calls == [(120, 250)] and resize_size(w, h, 250) == (250, 120)
    assert (out.image[200, 100:900] != _photo(h, w)[200, 100:900]).any(axis=-1).all()


def test_small_images_run_whole():
    model = FakeModel()
    hole = np.zeros((100, 120), np.float32)
    hole[40:60, 50:70] = 1
    out = inpaint_hd(model, _photo(100, 120), hole, HDOptions(strategy="crop", trigger=200))
    assert out.strategy == "original" and model.calls == [(100, 120)]


# ------------------------------------------------------------------------- guard rails
def test_pixel_limit_is_refused_in_one_line():
    image = np.zeros((300, 400, 3), np.uint8)
    with pytest.raises(InputError) as info:
        inpaint_hd(FakeModel(), image, np.zeros((300, 400)), HDOptions(max_pixels=100_000))
    message = str(info.value)
    assert "400x300 (0.1 MP)" in message and "--max-pixels" in message and "\n" not in message


def test_full_image_mask_with_crop_falls_back_to_resize_and_says_so():
    model = FakeModel()
    h, w = 400, 600
    out = inpaint_hd(model, _photo(h, w), np.ones((h, w)), HDOptions(trigger=256, resize_limit=300))
    assert out.strategy == "resize" and model.calls == [(200, 300)]
    assert any("using --hd-strategy resize instead of crop" in n for n in out.notes)
    assert out.image.shape == (h, w, 3)
    # not larger than the resize limit: the whole image, never an upscale
    model = FakeModel()
    out = inpaint_hd(model, _photo(h, w), np.ones((h, w)), HDOptions(trigger=256))
    assert out.strategy == "original" and model.calls == [(h, w)]
    assert any("using --hd-strategy original instead of crop" in n for n in out.notes)


def test_crop_over_the_limit_is_resized_and_says_so():
    model = FakeModel()
    hole = np.zeros((500, 1200), np.float32)
    hole[200:260, 100:500] = 1  # 400 + 2 * 16 = 432 > 300
    hole[10:20, 1100:1110] = 1
    options = HDOptions(trigger=256, crop_margin=16, crop_limit=300)
    out = inpaint_hd(model, _photo(500, 1200), hole, options)
    assert sorted(r.how for r in out.runs) == ["crop", "crop+resize"]
    assert any("longer than --hd-crop-limit 300" in n for n in out.notes)
    np.testing.assert_array_equal(out.image[hole < 0.5], _photo(500, 1200)[hole < 0.5])


def test_big_hole_gives_a_warning_note():
    hole = np.zeros((600, 800), np.float32)
    hole[100:500, 200:600] = 1  # 400 x 400 px
    out = inpaint_hd(FakeModel(), _photo(600, 800), hole, HDOptions(strategy="original"))
    assert any("400 px wide as the model sees it, 3.1x the largest hole" in n for n in out.notes)
    # resize to 400 px: the model sees a 200 px hole, below 2 x 128: no note
    resized = HDOptions(strategy="resize", trigger=256, resize_limit=400)
    assert inpaint_hd(FakeModel(), _photo(600, 800), hole, resized).notes == []
    strokes = np.zeros((600, 800), np.float32)
    strokes[300:320, 0:800] = 1  # long but thin: no note
    assert inpaint_hd(FakeModel(), _photo(600, 800), strokes, HDOptions("original")).notes == []
    small = np.zeros((600, 800), np.float32)
    small[100:200, 100:200] = 1
    assert (
        inpaint_hd(FakeModel(), _photo(600, 800), small, HDOptions(strategy="original")).notes == []
    )


def test_options_and_flags_that_do_not_apply():
    with pytest.raises(InputError, match="'tile' is not one of original, resize, crop"):
        HDOptions(strategy="tile")
    with pytest.raises(InputError, match="--hd-crop-margin must be >= 0"):
        HDOptions(crop_margin=-1)
    with pytest.raises(InputError, match="--hd-crop-margin does not apply to --hd-strategy resize"):
        check_applicable("resize", {"crop_margin"})
    with pytest.raises(InputError, match="--hd-trigger does not apply to --hd-strategy original"):
        check_applicable("original", {"trigger", "max_pixels"})
    check_applicable("crop", {"trigger", "crop_margin", "max_pixels"})


def test_size_mismatch_is_an_input_error():
    with pytest.raises(InputError, match="mask is 10x20 but the image is 30x20"):
        inpaint_hd(FakeModel(), np.zeros((20, 30, 3), np.uint8), np.zeros((20, 10)))


def test_batched_inpainter_equals_one_at_a_time_and_attention_options():
    from deepfill_tf.inference import load_inpainter
    from deepfill_tf.inference.hd_strategy import BatchedInpainter, set_attention_options

    inpainter = load_inpainter(str(DEMO))
    assert set_attention_options(inpainter.generator, max_attention_mb=64.0) == 1
    assert inpainter.generator.contextual_attention.max_attention_mb == 64.0
    infer = BatchedInpainter(inpainter)
    rng = np.random.default_rng(7)
    images = np.stack([_photo(64, 80, seed=s) for s in (8, 9)])
    holes = (rng.random((2, 64, 80)) < 0.05).astype(np.float32)
    holes[:, 20:40, 30:50] = 1
    together = infer.batch(images, holes)
    for n in range(2):
        alone = infer(images[n], holes[n])
        diff = np.abs(together[n].astype(int) - alone.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # batch-size float reassociation
        np.testing.assert_array_equal(together[n][holes[n] < 0.5], images[n][holes[n] < 0.5])


# ------------------------------------------------------------------------- the CLI
def _cli(capsys, tmp_path, image, hole, *flags):
    from PIL import Image

    from deepfill_tf.cli.main import main

    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray((hole > 0.5).astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    code = main(
        ["inpaint", "--checkpoint", str(DEMO), "--image", str(tmp_path / "in.png")]
        + ["--mask", str(tmp_path / "mask.png"), "--output", str(out), *map(str, flags)]
    )
    captured = capsys.readouterr()
    result = np.asarray(Image.open(out).convert("RGB")) if out.exists() else None
    return code, result, captured.err


def test_cli_crop_equals_the_library_and_keeps_known_pixels(tmp_path, capsys):
    from deepfill_tf.inference import load_inpainter

    h, w = 136, 200
    image, hole = _photo(h, w, seed=10), np.zeros((h, w), np.float32)
    hole[30:60, 20:60] = 1
    hole[90:100, 150:190] = 1
    flags = ("--hd-strategy", "crop", "--hd-trigger", 64, "--hd-crop-margin", 16)
    code, got, err = _cli(capsys, tmp_path, image, hole, *flags)
    assert code == 0, err
    options = HDOptions(strategy="crop", trigger=64, crop_margin=16)
    want = inpaint_hd(load_inpainter(str(DEMO)), image, hole, options)
    assert len(want.runs) == 2
    np.testing.assert_array_equal(got, want.image)
    np.testing.assert_array_equal(got[hole < 0.5], image[hole < 0.5])


def test_cli_attention_budget_gives_the_same_picture(tmp_path, capsys):
    h, w = 96, 128
    image, hole = _photo(h, w, seed=11), np.zeros((h, w), np.float32)
    hole[30:60, 40:90] = 1
    code, whole, err = _cli(capsys, tmp_path, image, hole, "--hd-strategy", "original")
    assert code == 0, err
    flags = ("--hd-strategy", "original", "--max-attention-mb", 0.01)
    code, chunked, err = _cli(capsys, tmp_path, image, hole, *flags)
    assert code == 0, err
    diff = np.abs(whole.astype(int) - chunked.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001, f"{diff.max()} {(diff > 0).mean()}"


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ("--hd-strategy", "resize", "--hd-crop-margin", 8),
            "--hd-crop-margin does not apply to --hd-strategy resize",
        ),
        (("--hd-strategy", "original", "--hd-trigger", 100), "--hd-trigger does not apply"),
        (("--max-pixels", 1000), "image is 128x96 (0.0 MP), above the limit of 0.0 MP"),
        (("--max-attention-mb", 0), "--max-attention-mb must be > 0"),
    ],
)
def test_cli_bad_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    image, hole = _photo(96, 128), np.zeros((96, 128), np.float32)
    hole[10:20, 10:20] = 1
    code, result, err = _cli(capsys, tmp_path, image, hole, *flags)
    assert code == 1 and result is None
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_full_mask_with_crop_says_it_resized(tmp_path, capsys):
    image, hole = _photo(96, 128), np.ones((96, 128), np.float32)
    flags = ("--hd-trigger", 64, "--hd-resize-limit", 64)
    code, result, err = _cli(capsys, tmp_path, image, hole, *flags)
    assert code == 0 and result.shape == image.shape
    assert "note: the crops around the hole regions would cover 100% of the image" in err


# --------------------------------------------------------------------- the SavedModel
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The demo model exported with the crop strategy baked in (trigger 64, margin 16)."""
    import tensorflow as tf

    from deepfill_tf.cli.main import main

    base = tmp_path_factory.mktemp("served")
    args = ["export", "--checkpoint", str(DEMO), "--output", str(base)]
    assert main(args + ["--hd-trigger", "64", "--hd-crop-margin", "16"]) == 0
    return tf.saved_model.load(str(base / "1"))


@pytest.mark.slow  # exports the demo model (30-80 s)
def test_saved_model_crops_in_the_graph_like_the_cli(served):
    """One hole region: the SavedModel's in-graph crop gives the CLI's crop result (to a level
    on a few pixels: another graph), both signatures; known pixels exact."""
    import tensorflow as tf

    from deepfill_tf.inference import load_inpainter
    from deepfill_tf.inference.io import encode_png

    h, w = 136, 200
    image, hole = _photo(h, w, seed=12), np.zeros((h, w), np.float32)
    hole[90:120, 150:185] = 1  # near the bottom-right corner: the crop shifts inward
    options = HDOptions(strategy="crop", trigger=64, crop_margin=16)
    want = inpaint_hd(load_inpainter(str(DEMO)), image, hole, options)
    assert [r.how for r in want.runs] == ["crop"]
    mask_u8 = (hole[None, :, :, None] * 255).astype(np.uint8)
    got = served.signatures["inpaint_tensors"](image=image[None], mask=mask_u8)["output"][0]
    png = served.signatures["serving_default"](
        image_bytes=tf.constant([encode_png(image)]),
        mask_bytes=tf.constant([encode_png(mask_u8[0, :, :, 0])]),
    )["output_bytes"][0]
    for name, out in (("tensors", got.numpy()), ("bytes", tf.io.decode_png(png).numpy())):
        np.testing.assert_array_equal(out[hole < 0.5], image[hole < 0.5], name)
        diff = np.abs(out.astype(int) - want.image.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, f"{name}: {diff.max()}"
    # The whole image would give another fill: the crop really ran.
    whole = inpaint_hd(load_inpainter(str(DEMO)), image, hole, HDOptions(strategy="original"))
    assert np.abs(whole.image.astype(int) - want.image.astype(int)).max() > 1


@pytest.mark.slow
def test_saved_model_below_the_trigger_runs_whole(served):
    from deepfill_tf.inference import load_inpainter

    image, hole = _photo(48, 64, seed=13), np.zeros((48, 64), np.float32)
    hole[10:30, 20:40] = 1
    mask_u8 = (hole[None, :, :, None] * 255).astype(np.uint8)
    got = served.signatures["inpaint_tensors"](image=image[None], mask=mask_u8)["output"][0]
    want = load_inpainter(str(DEMO))(image, hole)
    diff = np.abs(got.numpy().astype(int) - want.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_export_hd_flags_that_do_not_apply(tmp_path, capsys):
    from deepfill_tf.cli.main import main

    base = ["export", "--checkpoint", str(DEMO), "--output", str(tmp_path / "m")]
    cases = [
        (["--hd-strategy", "original", "--hd-crop-margin", "8"], "--hd-crop-margin does not"),
        (["--format", "tflite", "--hd-trigger", "512"], "apply to --format saved_model, not"),
    ]
    for flags, message in cases:
        assert main(base + flags) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "box",
    [(30, 60, 20, 60), (0, 12, 180, 200), (120, 136, 0, 30), (60, 61, 100, 101), None],
)
def test_crop_in_the_graph_equals_the_numpy_plan(box):
    """``crop_around_hole_graph`` (what the SavedModel runs) crops the box ``plan_crops``
    gives for one region (borders, a single pixel), pastes hole pixels only, and runs the
    whole image when there is no hole."""
    import tensorflow as tf

    from deepfill_tf.inference.hd_strategy import crop_around_hole_graph

    h, w = 136, 200
    image, hole = _photo(h, w, seed=14), np.zeros((h, w), np.float32)
    if box:
        hole[box[0] : box[1], box[2] : box[3]] = 1

    def fn(crop, crop_hole):
        return tf.reverse(crop, [0]) // 2 + 7  # paints every pixel

    run = tf.function(
        lambda i, m: crop_around_hole_graph(fn, i, m, trigger=64, margin=16, limit=1000),
        input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([None, None, 1])],
    )
    got = run(image, hole[..., None]).numpy()

    def numpy_fn(crop, crop_hole):
        return np.flip(crop, 0) // 2 + 7

    want = inpaint_hd(numpy_fn, image, hole, HDOptions(trigger=64, crop_margin=16))
    if box is None:
        np.testing.assert_array_equal(got, np.flip(image, 0) // 2 + 7)  # whole, unpasted
        return
    assert want.strategy == "crop" and len(want.runs) == 1
    np.testing.assert_array_equal(got, want.image)
