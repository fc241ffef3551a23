"""deepfill-tf evaluate: the report, the baselines against the demo model, resume, bad input."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.cli.main import main

REPO = pathlib.Path(__file__).resolve().parents[1]
DEMO = str(REPO / "checkpoints" / "demo")
REPORT = ("results.json", "results.csv", "summary.md")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three 128-px example photos in a folder of their own."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut_128.jpg", "chelsea_128.jpg", "coins_128.jpg"):
        shutil.copy(REPO / "examples" / "train" / name, folder / name)
    return str(folder)


def _evaluate(out, photos, *extra, methods=("--checkpoint", DEMO, "--model", "mean_fill")):
    return main(
        [
            "evaluate", *methods, "--model", "opencv_telea",
            "--data", photos, "--size", "64", "--output", str(out), "--batch-size", "2",
            *extra,
        ]
    )  # fmt: skip


def _rows(out):
    with open(os.path.join(out, "results.csv")) as f:
        return f.read()


def test_mean_fill_worse_than_demo_on_held_out_photo():
    from deepfill_tf.evaluation.metrics import image_metrics
    from deepfill_tf.evaluation.runner import baseline_method, load_model_method
    from deepfill_tf.inference.io import read_image, read_mask

    image = read_image(str(REPO / "examples" / "demo" / "coffee.png"))
    mask = read_mask(str(REPO / "examples" / "demo" / "coffee_mask.png"))
    scores = {}
    for method in (load_model_method(DEMO), baseline_method("mean_fill")):
        out, _ = method.infer(image[None], mask[None])
        assert (out[0][mask < 0.5] == image[mask < 0.5]).all()  # known pixels kept
        scores[method.kind] = image_metrics(out[0], image, mask)
        if method.kind == "model":  # the batched path gives what `deepfill-tf inpaint` gives
            from deepfill_tf.inference import load_inpainter

            assert (out[0] == load_inpainter(DEMO)(image, mask)).all()
    model, flat = scores["model"], scores["baseline"]
    assert model["psnr_hole"] > flat["psnr_hole"] + 3.0
    assert model["l1_hole"] < flat["l1_hole"]
    assert model["deepfill_l1"] < flat["deepfill_l1"]
    assert model["ssim"] > flat["ssim"]


def test_report_files_and_same_seed_same_numbers(tmp_path, photos, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    args = ("--masks", "box", "irregular", "--mask-count", "1", "--seed", "3", "--raw")
    assert _evaluate(a, photos, *args) == 0
    for name in REPORT + (
        "psnr_hole_vs_hole_ratio.png", "bars_box.png", "contact_sheet_irregular.png",
    ):  # fmt: skip
        assert (a / name).is_file(), name
    assert not (a / "evaluate.resume.jsonl").exists()
    results = json.loads((a / "results.json").read_text())
    assert set(results["aggregates"]) == {"box", "irregular"}
    assert results["suites"]["irregular"]["pairs"] == 12  # 12 masks over 3 images
    assert results["methods"]["demo"]["checkpoint_sha256"]
    assert results["timing"]["images_per_second"]["demo"] > 0
    buckets = results["aggregates"]["irregular"]["buckets"]["demo"]
    assert len(buckets) == 6 and all(set(v) == {"N", "B"} for v in buckets.values())
    summary = (a / "summary.md").read_text()
    assert "## Suite `irregular`" in summary and "(0.5, 0.6] B" in summary
    assert "| mean_fill |" in summary and "raw_psnr_hole" in summary
    # The same command again: byte-identical masks and identical per-image numbers.
    assert _evaluate(b, photos, *args) == 0
    assert _rows(a) == _rows(b)
    for suite in ("box", "irregular"):
        ma = json.loads((a / "masks" / suite / "manifest.json").read_text())
        mb = json.loads((b / "masks" / suite / "manifest.json").read_text())
        assert ma["set_sha256"] == mb["set_sha256"]
    # --compare puts both side by side.
    capsys.readouterr()
    assert main(["evaluate", "--compare", str(a), str(b), "--output", str(tmp_path / "c")]) == 0
    text = capsys.readouterr().out
    assert "same masks" in text and text.count("| demo |") == 2 * 2
    assert (tmp_path / "c" / "compare.md").read_text() == text


def test_killed_run_resumes_to_same_numbers(tmp_path, photos, monkeypatch):
    from deepfill_tf.evaluation import runner

    full, killed = tmp_path / "full", tmp_path / "killed"
    args = ("--masks", "freeform", "center", "--mask-count", "3")
    # The resume logic does not depend on the method: the baselines keep this test quick.
    baselines = ("--model", "mean_fill", "--model", "opencv_ns")
    assert _evaluate(full, photos, *args, methods=baselines) == 0

    original = runner.run_evaluation

    def stop_early(**kwargs):
        return original(**kwargs, stop_after_batches=3)

    monkeypatch.setattr(runner, "run_evaluation", stop_early)
    assert _evaluate(killed, photos, *args, methods=baselines) == 130  # KeyboardInterrupt
    assert (killed / "evaluate.resume.jsonl").is_file()
    assert not any((killed / f).exists() for f in REPORT)
    lines = (killed / "evaluate.resume.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3
    # A kill in the middle of a line: the cut line is recomputed.
    with open(killed / "evaluate.resume.jsonl", "a") as f:
        f.write('{"suite": "center", "bat')
    monkeypatch.setattr(runner, "run_evaluation", original)
    assert _evaluate(killed, photos, *args, methods=baselines) == 0
    assert _rows(full) == _rows(killed)
    assert not (killed / "evaluate.resume.jsonl").exists()


def _bad(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    capsys.readouterr()
    code = main(["evaluate", *argv, "--output", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err
    for name in REPORT:
        assert not (out / name).exists()


def test_bad_inputs(tmp_path, photos, capsys):
    base = ["--model", "mean_fill", "--masks", "box", "--size", "64"]
    empty = tmp_path / "empty"
    empty.mkdir()
    _bad(tmp_path, capsys, [*base, "--data", str(empty)], "no images")
    _bad(
        tmp_path, capsys,
        ["--model", "mean_fill", "--masks", "box", "--size", "256", "--data", photos],
        "smaller than --size 256",
    )  # fmt: skip
    # A suite whose mask was edited after it was written.
    suite = tmp_path / "suite"
    assert (
        main(["masks", "--suite", "box", "--size", "64", "--count", "2", "--output", str(suite)])
        == 0
    )
    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(suite / "box_00001.png")
    _bad(tmp_path, capsys, [*base[:2], "--masks", str(suite), "--size", "64", "--data", photos],
         "SHA-256 differs")  # fmt: skip
    # A suite of another size.
    other = tmp_path / "other"
    assert (
        main(["masks", "--suite", "box", "--size", "96", "--count", "1", "--output", str(other)])
        == 0
    )
    _bad(tmp_path, capsys, [*base[:2], "--masks", str(other), "--size", "64", "--data", photos],
         "masks are 96x96 but --size is 64")  # fmt: skip
    # A checkpoint of another family than asked for.
    _bad(tmp_path, capsys, [*base, "--data", photos, "--checkpoint", DEMO, "--model", "deepfill_v1"],
         "DeepFill v2")  # fmt: skip
    # FID weights that are not there.
    _bad(tmp_path, capsys, [*base, "--data", photos, "--inception-weights", str(tmp_path / "x.h5")],
         "--inception-weights")  # fmt: skip
    _bad(tmp_path, capsys, ["--model", "mean_fill", "--masks", "nosuch", "--size", "64", "--data", photos],
         "neither a suite folder nor a suite name")  # fmt: skip
    assert not (tmp_path / "out").exists()  # nothing was written for any of them


@pytest.mark.slow
def test_fid_with_local_inception_weights(tmp_path, photos):
    import keras

    weights = str(tmp_path / "inception.weights.h5")  # random weights: only the plumbing
    keras.applications.InceptionV3(
        include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3)
    ).save_weights(weights)
    out = tmp_path / "fid"
    methods = ("--model", "mean_fill")
    assert (
        _evaluate(out, photos, "--masks", "box", "--inception-weights", weights, methods=methods)
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert set(results["fid"]["box"]) == {"mean_fill", "opencv_telea"}
    assert all(v >= 0 for v in results["fid"]["box"].values())
    assert "not comparable with published FIDs" in results["fid_network"]
    assert "| fid |" in (out / "summary.md").read_text().replace(" ↓", "")


def test_another_family_through_evaluate(tmp_path, photos):
    """GLCIC (its own inpainter, image by image) with the oracle's random weights."""
    from tests.conftest import oracle_path

    t7 = oracle_path("glcic") / "completionnet" / "completionnet.t7"
    out = tmp_path / "glcic"
    methods = ("--checkpoint", str(t7), "--model", "glcic")
    assert _evaluate(out, photos, "--masks", "box", "--raw", methods=methods) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["methods"]["completionnet.t7"]["family"] == "glcic"
    rows = [r for r in results["per_image"] if r["method"] == "completionnet.t7"]
    assert len(rows) == 3 and all(r["raw_available"] is False for r in rows)


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path, photos):
    """A real SIGKILL in the middle of a run; the same command then finishes it."""
    import signal
    import subprocess
    import sys
    import time

    args = ("--masks", "freeform", "--mask-count", "120")
    killed, full = tmp_path / "killed", tmp_path / "full"
    argv = [
        sys.executable, "-m", "deepfill_tf.cli.main", "evaluate", "--checkpoint", DEMO,
        "--model", "mean_fill", "--model", "opencv_telea", "--data", photos, "--size", "64",
        "--output", str(killed), "--batch-size", "2", *args,
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume = killed / "evaluate.resume.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if resume.is_file() and len(resume.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(resume.read_text().splitlines()) - 1
    assert 3 <= done < 60 and not (killed / "results.csv").exists()
    assert _evaluate(killed, photos, *args) == 0
    assert _evaluate(full, photos, *args) == 0
    assert _rows(full) == _rows(killed)
