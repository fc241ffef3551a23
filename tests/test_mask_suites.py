"""Evaluation mask suites: declared ranges and buckets, reproducibility, checksums, --from-dir."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from deepfill_tf.cli.main import main
from deepfill_tf.errors import InputError
from deepfill_tf.evaluation import suites as S

SIZE = 64


def _read(path):
    return np.asarray(Image.open(path)) > 127


@pytest.mark.parametrize("name", ["box", "center", "freeform", "thin", "medium", "thick"])
def test_suite_ratios_in_declared_range(name, tmp_path):
    suite = S.generate_suite(name, SIZE, 6, seed=5)
    S.write_suite(suite, str(tmp_path))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    lo, hi = manifest["parameters"]["ratio_range"]
    assert manifest["suite"] == name and manifest["count"] == 6 and manifest["seed"] == 5
    for e in manifest["masks"]:
        hole = _read(tmp_path / e["file"])
        assert hole.shape == (SIZE, SIZE)
        ratio = hole.mean()
        assert ratio == pytest.approx(e["hole_ratio"], abs=1e-6)
        assert lo - 1e-9 <= ratio <= hi + 1e-9 and ratio > 0, (name, ratio, lo, hi)


def test_box_suite_is_inpaint_yml_box():
    # 256: box 128 x 128 shrunk by 0..16 per side -> hole sides 96..128.
    suite = S.generate_suite("box", 256, 8, seed=0)
    for e in suite.entries:
        rows, cols = np.nonzero(e["mask"])
        h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert 96 <= h <= 128 and 96 <= w <= 128 and e["mask"].sum() == h * w


def test_center_suite():
    mask = S.generate_suite("center", 128, 1, seed=0).entries[0]["mask"]
    assert mask[32:96, 32:96].all() and mask.sum() == 64 * 64


def test_lama_parameters_are_lamas_configs():
    thick = S.lama_parameters("thick", 256)
    assert thick["irregular"] == dict(
        min_times=1, max_times=5, max_width=100, max_angle=4, max_len=200
    )
    assert thick["box"]["bbox_max_size"] == 150 and thick["box_proba"] == 0.3
    assert S.lama_parameters("thin", 512)["irregular"]["max_times"] == 70
    assert S.lama_parameters("thin", 256)["box_proba"] == 0.0
    assert S.lama_parameters("medium", 128)["irregular"]["max_width"] == 25  # scaled from 256


def test_irregular_buckets_and_border(tmp_path):
    suite = S.generate_suite("irregular", SIZE, 2, seed=1)
    margin = S.border_margin(SIZE)
    assert margin == 6 and S.border_margin(512) == 50
    S.write_suite(suite, str(tmp_path))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(manifest["masks"]) == 6 * 2 * 2
    seen = {}
    for e in manifest["masks"]:
        hole = _read(tmp_path / e["file"])
        ratio = hole.mean()
        assert S.bucket_of(ratio) == e["bucket"]
        assert S.touches_border(hole, margin) == e["border"]
        if not e["border"]:
            assert not hole[:margin].any() and not hole[:, -margin:].any()
        seen[(e["bucket"], e["border"])] = seen.get((e["bucket"], e["border"]), 0) + 1
    assert len(seen) == 12 and set(seen.values()) == {2}


def test_bucket_edges():
    assert S.bucket_of(0.01) is None and S.bucket_of(0.0100001) == "(0.01, 0.1]"
    assert S.bucket_of(0.1) == "(0.01, 0.1]" and S.bucket_of(0.6) == "(0.5, 0.6]"
    assert S.bucket_of(0.61) is None


def _tree_bytes(folder):
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))}


@pytest.mark.parametrize("name", ["box", "freeform", "irregular", "thick"])
def test_same_seed_byte_identical(name, tmp_path):
    a, b, c = (str(tmp_path / x) for x in "abc")
    S.write_suite(S.generate_suite(name, SIZE, 2, seed=7), a)
    S.write_suite(S.generate_suite(name, SIZE, 2, seed=7), b)
    S.write_suite(S.generate_suite(name, SIZE, 2, seed=8), c)
    assert _tree_bytes(a) == _tree_bytes(b)
    assert (
        json.load(open(os.path.join(a, "manifest.json")))["set_sha256"]
        != json.load(open(os.path.join(c, "manifest.json")))["set_sha256"]
    )


def test_prefix_stable():
    short = S.generate_suite("freeform", SIZE, 2, seed=3)
    long = S.generate_suite("freeform", SIZE, 4, seed=3)
    assert [e["sha256"] for e in short.entries] == [e["sha256"] for e in long.entries[:2]]


def test_load_suite_verifies(tmp_path):
    folder = str(tmp_path / "s")
    S.write_suite(S.generate_suite("box", SIZE, 3, seed=0), folder)
    assert len(S.load_suite(folder, SIZE).entries) == 3
    with pytest.raises(InputError, match="masks are 64x64 but --size is 128"):
        S.load_suite(folder, 128)
    first = os.path.join(folder, "box_00000.png")
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(first)
    with pytest.raises(InputError, match="SHA-256 differs"):
        S.load_suite(folder, SIZE)
    with pytest.raises(InputError, match="no manifest.json"):
        S.load_suite(str(tmp_path), SIZE)


def test_from_dir_buckets_nvidia_masks(tmp_path):
    src = tmp_path / "nvidia"
    src.mkdir()
    # NVIDIA convention: black (0) = hole, white = valid; 128x128 files, bucketed at 64.
    valid = np.full((128, 128, 3), 255, np.uint8)
    a = valid.copy()
    a[40:80, 40:80] = 0  # 1600/16384 = 0.0977 -> (0.01, 0.1], away from the border
    b = valid.copy()
    b[:60, :100] = 0  # 0.366 -> (0.3, 0.4], touches the border
    c = valid.copy()  # no hole: out of range
    for name, arr in (("a", a), ("b", b), ("c", c)):
        Image.fromarray(arr).save(src / f"{name}.png")
    suite = S.from_dir(str(src), SIZE)
    entries = {e["file"]: e for e in suite.entries}
    assert set(entries) == {"a.png", "b.png"}
    assert entries["a.png"]["bucket"] == "(0.01, 0.1]" and entries["a.png"]["border"] is False
    assert entries["b.png"]["bucket"] == "(0.3, 0.4]" and entries["b.png"]["border"] is True
    assert entries["a.png"]["resized_from"] == [128, 128]
    assert suite.parameters["skipped_out_of_range"] == 1
    out = tmp_path / "out"
    S.write_suite(suite, str(out))
    hole = _read(out / "a.png")  # written in our convention: white = hole
    assert hole.mean() == pytest.approx(400 / 4096) and hole[20:40, 20:40].all()
    assert len(S.load_suite(str(out), SIZE).entries) == 2


def test_cli_masks_suite(tmp_path, capsys):
    out = tmp_path / "suite"
    assert (
        main(
            [
                "masks",
                "--suite",
                "irregular",
                "--size",
                "64",
                "--count",
                "1",
                "--seed",
                "2",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["suite"] == "irregular" and len(manifest["masks"]) == 12
    assert "set SHA-256" in capsys.readouterr().out
    assert main(["masks", "--suite", "box", "--size", "64", "64", "--output", str(out)]) == 1
    assert "one --size S" in capsys.readouterr().err
