#!/usr/bin/env python
"""High-resolution benchmark (issue 13): the original / resize / crop strategies on large photos.

A script, not a test. It prints a table and writes JSON (default
``benchmarks/results/high_resolution.json``). Every configuration (model, size, mask,
strategy) runs in its own subprocess, so peak RSS (``ru_maxrss``) is per configuration and one
failure (or a timeout) does not stop the run.

Models: ``v2`` the published-width DeepFill v2 (cnum 48) with random Glorot weights (timing
does not depend on the weights) and ``demo`` the bundled demo model (``checkpoints/demo``,
DeepFill v2 cnum 12). Image: the bundled held-out photo ``examples/demo/coffee.png``
upscaled (bicubic) to the size. Masks (1 = hole): ``box`` one 512 x 512 hole (centre at
55 % of the width, 45 % of the height) and ``strokes`` 16 scattered free-form strokes
(10-24 px wide, seeded), both scaled with nothing but their position.

Per configuration: ``load_s`` (build or read the model and trace the inpainting function on a
64 x 64 image), ``wall_s`` (``inpaint_hd`` on the photo after that: the time a user waits per
photo once the model is loaded), ``peak_rss_mb`` (the child's ``ru_maxrss``) and
``rss_after_load_mb``; the model runs (how many, their sizes); for ``original`` the estimated
memory of the single-pass attention (``attention_single_mb``: what the layer would need
without a budget) and whether it ran in chunks under ``--max-attention-mb``.

``original`` above ``--original-max-pixels`` (default 2048 x 1536) is recorded as skipped:
its exact attention compares every cell with every cell (at 4096 x 3072, 2e5 x 2e5 cells,
about an hour on 2 cores, and the full-resolution activations alone take several GB). Use
``--all`` to run it anyway.

Examples:
  python benchmarks/high_resolution.py --smoke          # one small configuration per strategy
  python benchmarks/high_resolution.py                  # everything (idle machine; long)
  python benchmarks/high_resolution.py --models v2 --sizes 4096x3072 --masks box \\
      --strategies crop
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchinfo  # noqa: E402  (the benchmarks' shared helpers, pure Python)

REPO = Path(__file__).resolve().parents[1]
RESULT_MARKER = "@@HIRES_RESULT@@ "
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "high_resolution.json"
SIZES = ("1024x768", "2048x1536", "4096x3072", "6000x4000")
MASKS = ("box", "strokes")
STRATEGIES = ("original", "resize", "crop")
MODELS = ("v2", "demo")


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def make_photo(width: int, height: int):
    """The bundled held-out photo, bicubic-upscaled to width x height (uint8 RGB)."""
    import cv2
    import numpy as np
    from PIL import Image

    photo = np.asarray(Image.open(REPO / "examples" / "demo" / "coffee.png").convert("RGB"))
    return cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)


def make_mask(kind: str, width: int, height: int, hole: int = 512, seed: int = 0):
    """(height, width) float32 hole mask, 1 = hole: one ``hole`` x ``hole`` box or scattered
    free-form strokes."""
    import cv2
    import numpy as np

    mask = np.zeros((height, width), np.float32)
    if kind == "coffee":
        # The demo's own mask at a third of the photo's side (nearest neighbour), centred: holes
        # of 80-130 px on a 1536 px photo, about the size the model was trained with.
        from PIL import Image

        small = np.asarray(Image.open(REPO / "examples" / "demo" / "coffee_mask.png").convert("L"))
        side = min(width, height) // 3
        big = cv2.resize(small, (side, side), interpolation=cv2.INTER_NEAREST)
        y0, x0 = (height - side) // 2, (width - side) // 2
        mask[y0 : y0 + side, x0 : x0 + side] = big > 127
        return mask
    if kind == "box":
        side_w, side_h = min(hole, width // 2), min(hole, height // 2)
        x0 = int(0.55 * width) - side_w // 2
        y0 = int(0.45 * height) - side_h // 2
        mask[y0 : y0 + side_h, x0 : x0 + side_w] = 1.0
        return mask
    rng = np.random.default_rng(seed)
    for _ in range(16):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        thickness = int(rng.integers(10, 25))
        for _ in range(int(rng.integers(3, 7))):  # a polyline of 3-6 segments
            angle = rng.uniform(0, 2 * np.pi)
            length = rng.uniform(40, 120)
            nx = int(np.clip(x + length * np.cos(angle), 0, width - 1))
            ny = int(np.clip(y + length * np.sin(angle), 0, height - 1))
            cv2.line(mask, (x, y), (nx, ny), 1.0, thickness)
            x, y = nx, ny
    return mask


def _build(model: str, max_attention_mb, foreground_margin=None):
    from deepfill_tf.inference.hd_strategy import BatchedInpainter, set_attention_options

    if model == "demo":
        from deepfill_tf.inference import load_inpainter

        inpainter = load_inpainter(str(REPO / "checkpoints" / "demo"))
    else:
        from deepfill_tf.inference.inpainter import Inpainter
        from deepfill_tf.models.deepfill_generator import DeepFillV2Generator

        inpainter = Inpainter(DeepFillV2Generator(cnum=48).build_for(64, 64))
    if max_attention_mb is not None:
        set_attention_options(inpainter.generator, max_attention_mb=max_attention_mb)
    if foreground_margin is not None:  # only the attention cells near the hole (not exact)
        set_attention_options(inpainter.generator, foreground_margin=foreground_margin)
    return BatchedInpainter(inpainter)


def run_config(cfg: dict) -> dict:
    """One configuration in this process (see the module docstring)."""
    import numpy as np

    from deepfill_tf.inference.hd_strategy import HDOptions, inpaint_hd
    from deepfill_tf.layers.contextual_attention import (
        DEFAULT_MAX_ATTENTION_MB,
        single_pass_bytes,
    )

    row = dict(cfg)
    width, height = _size(cfg["size"])
    t0 = time.perf_counter()
    infer = _build(cfg["model"], cfg.get("max_attention_mb"), cfg.get("attention_margin"))
    warm = np.zeros((64, 64, 3), np.uint8)
    warm_hole = np.zeros((64, 64), np.float32)
    warm_hole[16:32, 16:32] = 1
    infer(warm, warm_hole)
    row["load_s"] = time.perf_counter() - t0
    row["rss_after_load_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    image = make_photo(width, height)
    hole = make_mask(cfg["mask"], width, height)
    row["hole_fraction"] = float(hole.mean())
    options = HDOptions(
        strategy=cfg["strategy"],
        trigger=cfg["trigger"],
        resize_limit=cfg["resize_limit"],
        crop_margin=cfg["crop_margin"],
    )
    t0 = time.perf_counter()
    result = inpaint_hd(infer, image, hole, options)
    row["wall_s"] = time.perf_counter() - t0
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    assert result.image.shape == image.shape
    assert (result.image[hole < 0.5] == image[hole < 0.5]).all(), "known pixels changed"
    if cfg.get("save"):
        from deepfill_tf.inference.io import write_png

        write_png(cfg["save"], result.image)
    row["strategy_used"] = result.strategy
    row["runs"] = len(result.runs)
    row["run_sizes"] = sorted({f"{r.size[0]}x{r.size[1]}" for r in result.runs})
    row["notes"] = result.notes
    if result.strategy == "original":
        hs, ws = -(-height // 8), -(-width // 8)
        single = float(single_pass_bytes(1, hs, ws)) / 2**20
        budget = cfg.get("max_attention_mb") or DEFAULT_MAX_ATTENTION_MB
        row["attention_single_mb"] = single
        row["attention_budget_mb"] = budget
        row["attention_chunked"] = single > budget
    row["status"] = "ok"
    return row


def spawn(cfg: dict, timeout: float) -> dict:
    """Runs one configuration in a fresh interpreter; returns its row (or an error row)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**cfg, "status": "error", "error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    tail = [s for s in proc.stderr.strip().splitlines() if s.strip()]
    killed = " (killed: out of memory?)" if proc.returncode in (-9, 137) else ""
    return {
        **cfg,
        "status": "error",
        "error": f"exit {proc.returncode}{killed}: {tail[-1][:200] if tail else 'no output'}",
    }


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'model':6} {'size':>10} {'mask':8} {'strategy':9} {'ran':8} {'runs':>4} "
        f"{'wall s':>8} {'peak MB':>8} {'load s':>7} {'attn MB':>9} note"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        note = r.get("error") or r.get("skipped") or "; ".join(r.get("notes", []))[:60]
        attn = r.get("attention_single_mb")
        if attn is not None and r.get("attention_chunked"):
            attn_text = f">{r['attention_budget_mb']:.0f}"  # chunked under the budget
        else:
            attn_text = _fmt(attn, ".0f")
        lines.append(
            f"{r['model']:6} {r['size']:>10} {r['mask']:8} {r['strategy']:9} "
            f"{r.get('strategy_used', '-'):8} {_fmt(r.get('runs'), 'd'):>4} "
            f"{_fmt(r.get('wall_s'), '.2f'):>8} {_fmt(r.get('peak_rss_mb'), '.0f'):>8} "
            f"{_fmt(r.get('load_s'), '.1f'):>7} {attn_text:>9} {note}"
        )
    return "\n".join(lines)


def machine_info() -> dict:
    """The shared machine description (CPU model and flags, platform) plus TF and the load."""
    try:
        tensorflow = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tensorflow = None
    return {
        **benchinfo.machine(),
        "cpus": os.cpu_count(),
        "tensorflow": tensorflow,
        "loadavg_start": os.getloadavg(),
    }


def make_figure(path: Path, size: int, timeout: float) -> list[dict]:
    """docs/high_resolution.md's figure: the held-out photo upscaled to size x size with its
    mask at a third of that size in the middle, through each strategy with the demo model (default options), one
    child process per strategy. Top row: the whole image (input with the hole in white,
    then each result), scaled to 384 px; bottom row: a 384 x 384 detail at full resolution
    around the largest hole. Returns the rows (time, peak RSS)."""
    import tempfile

    import cv2
    import numpy as np

    from deepfill_tf.inference.io import read_image, write_png

    rows, panels = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in STRATEGIES:
            cfg = {
                "model": "demo",
                "size": f"{size}x{size}",
                "mask": "coffee",
                "strategy": strategy,
                "trigger": 1024,
                "resize_limit": 1024,
                "crop_margin": 128,
                "max_attention_mb": None,
                "save": str(Path(tmp) / f"{strategy}.png"),
            }
            row = spawn(cfg, timeout)
            rows.append(row)
            print(format_table([row]).splitlines()[-1], flush=True)
            if row["status"] != "ok":
                raise SystemExit(f"figure: {strategy} failed: {row.get('error')}")
            panels.append(read_image(cfg["save"]))
    image = make_photo(size, size)
    hole = make_mask("coffee", size, size)
    shown = image.copy()
    shown[hole > 0.5] = 255
    panels.insert(0, shown)
    # the detail: 384 x 384 around the centre of the largest hole region
    count, labels, stats, centres = cv2.connectedComponentsWithStats((hole > 0.5).astype(np.uint8))
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    cx, cy = (int(v) for v in centres[largest])
    x0 = min(max(cx - 192, 0), size - 384)
    y0 = min(max(cy - 192, 0), size - 384)
    gap = np.full((384, 8, 3), 255, np.uint8)

    def strip(images):
        out = []
        for im in images:
            out += [im, gap]
        return np.concatenate(out[:-1], axis=1)

    top = strip([cv2.resize(p, (384, 384), interpolation=cv2.INTER_AREA) for p in panels])
    bottom = strip([p[y0 : y0 + 384, x0 : x0 + 384] for p in panels])
    figure = np.concatenate([top, np.full((8, top.shape[1], 3), 255, np.uint8), bottom], 0)
    write_png(str(path), figure)
    print(f"wrote {path} (detail at x {x0}, y {y0})")
    return rows


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--masks", default=",".join(MASKS))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--trigger", type=int, default=1024, help="--hd-trigger (px)")
    parser.add_argument("--resize-limit", type=int, default=1024, help="--hd-resize-limit")
    parser.add_argument("--crop-margin", type=int, default=128, help="--hd-crop-margin (px)")
    parser.add_argument("--max-attention-mb", type=float, default=None)
    parser.add_argument(
        "--attention-margin",
        type=int,
        default=None,
        help="ContextualAttention(foreground_margin=N): only cells near the hole (not exact)",
    )
    parser.add_argument("--original-max-pixels", type=int, default=2048 * 1536)
    parser.add_argument("--all", action="store_true", help="run original at every size")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per configuration (s)")
    parser.add_argument(
        "--smoke", action="store_true", help="640x480, demo model, every strategy and mask"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--figure", type=Path, help="write docs/high_resolution.md's figure")
    parser.add_argument("--figure-size", type=int, default=1536)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_MARKER + json.dumps(run_config(json.loads(args.worker))), flush=True)
        return 0
    if args.figure:
        rows = make_figure(args.figure, args.figure_size, args.timeout)
        print(format_table(rows))
        return 0
    if args.smoke:
        args.models, args.sizes, args.trigger, args.resize_limit = "demo", "640x480", 320, 320
        args.crop_margin = 64
    rows = []
    configs = [
        {
            "model": model,
            "size": size,
            "mask": mask,
            "strategy": strategy,
            "trigger": args.trigger,
            "resize_limit": args.resize_limit,
            "crop_margin": args.crop_margin,
            "max_attention_mb": args.max_attention_mb,
            "attention_margin": args.attention_margin,
        }
        for model in _csv(args.models)
        for size in _csv(args.sizes)
        for mask in _csv(args.masks)
        for strategy in _csv(args.strategies)
    ]
    for cfg in configs:
        w, h = _size(cfg["size"])
        if cfg["strategy"] == "original" and w * h > args.original_max_pixels and not args.all:
            row = {**cfg, "status": "skipped", "skipped": "original above --original-max-pixels"}
        else:
            row = spawn(cfg, args.timeout)
        rows.append(row)
        print(format_table([row]).splitlines()[-1], flush=True)
    print()
    print(format_table(rows))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"machine": machine_info(), "rows": rows}, indent=1) + "\n")
    os.replace(tmp, args.output)
    print(f"\nwrote {args.output}")
    return 0 if all(r["status"] in ("ok", "skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
