"""Reports of ``deepfill-tf evaluate``: results.json, results.csv, summary.md, plots, contact
sheets, and ``compare`` of several report folders.

Everything is rendered in memory and written at the very end, each file atomically
(``deepfill_tf.fileio``), so a failed or killed run never leaves a half-written report (the
partial per-image results live in ``evaluate.resume.jsonl``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw

from deepfill_tf.errors import InputError
from deepfill_tf.evaluation.metrics import METRICS
from deepfill_tf.fileio import write_atomic

__all__ = ["aggregate", "compare_reports", "summary_markdown", "write_report"]

# Shown as percent in summary.md (the DeepFill papers print them so).
PERCENT = ("deepfill_l1", "deepfill_l2", "deepfill_tv")
BUCKET_METRICS = ("l1_hole", "psnr_hole", "ssim")


def _mean(values) -> float | None:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def _metric_names(records) -> list[str]:
    names = list(METRICS)
    if any("raw_psnr_hole" in r for r in records):
        names += [f"raw_{m}" for m in METRICS]
    return names


def aggregate(records: list[dict]) -> dict:
    """{suite: {"methods": {method: {metric: mean}}, "buckets": {method: {bucket: {"N"|"B":
    {metric: mean, "count": n}}}}}}"""
    out: dict = {}
    names = _metric_names(records)
    for r in records:
        s = out.setdefault(r["suite"], {"methods": {}, "buckets": {}, "_rows": {}})
        s["_rows"].setdefault(r["method"], []).append(r)
    for s in out.values():
        for method, rows in s.pop("_rows").items():
            s["methods"][method] = {m: _mean(r.get(m) for r in rows) for m in names}
            s["methods"][method]["count"] = len(rows)
            buckets: dict = {}
            for r in rows:
                if r.get("bucket") is None:
                    continue
                key = "B" if r.get("border") else "N"
                buckets.setdefault(r["bucket"], {}).setdefault(key, []).append(r)
            if buckets:
                s["buckets"][method] = {
                    b: {
                        k: {**{m: _mean(r.get(m) for r in rs) for m in names}, "count": len(rs)}
                        for k, rs in sorted(d.items())
                    }
                    for b, d in sorted(
                        buckets.items(), key=lambda kv: float(kv[0][1:].split(",")[0])
                    )
                }
    return out


def _fmt(metric: str, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    base = metric[4:] if metric.startswith("raw_") else metric
    if base in PERCENT:
        return f"{100 * value:.2f}%"
    if base.startswith("psnr"):
        return f"{value:.2f}"
    if base == "fid":
        return f"{value:.2f}"
    return f"{value:.4f}"


def _arrow(metric: str) -> str:
    better = METRICS.get(metric[4:] if metric.startswith("raw_") else metric, (None,))[0]
    return " ↑" if better is True else (" ↓" if better is False else "")


def summary_markdown(results: dict) -> str:
    """summary.md: settings, one table per suite (rows = methods), per-bucket tables."""
    s = results["settings"]
    lines = [
        "# Evaluation summary",
        "",
        f"Data: `{s['data']}` ({s['images']} images), size {s['size']}x{s['size']} by "
        f"`{s['resize_mode']}`; seed {s['seed']}; metrics on the composite "
        "(network output in the hole, input outside)"
        + ("; `raw_*` on the raw network output." if s.get("raw") else "."),
        "",
    ]
    names = [m for m in METRICS] + ([f"raw_{m}" for m in METRICS] if s.get("raw") else [])
    for suite, agg in results["aggregates"].items():
        info = results["suites"][suite]
        lines += [
            f"## Suite `{suite}` (v{info['version']}, {info['masks']} masks, "
            f"{info['pairs']} pairs, set SHA-256 `{info['set_sha256'][:12]}`)",
            "",
        ]
        fid = results.get("fid", {}).get(suite, {})
        cols = names + (["fid"] if fid else [])
        lines.append("| method | " + " | ".join(c + _arrow(c) for c in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for method, values in agg["methods"].items():
            cells = [_fmt(c, values.get(c)) for c in names]
            if fid:
                cells.append(_fmt("fid", fid.get(method)))
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
        if agg["buckets"]:
            for metric in BUCKET_METRICS:
                buckets = []
                for per in agg["buckets"].values():
                    for b, d in per.items():
                        for key in d:
                            if (b, key) not in buckets:
                                buckets.append((b, key))
                buckets.sort(key=lambda bk: (float(bk[0][1:].split(",")[0]), bk[1] == "B"))
                lines.append(
                    f"`{metric}`{_arrow(metric)} per hole-ratio bucket (N = holes away from the "
                    "border, B = touching it):"
                )
                lines.append("")
                lines.append("| method | " + " | ".join(f"{b} {k}" for b, k in buckets) + " |")
                lines.append("|---|" + "---|" * len(buckets))
                for method, per in agg["buckets"].items():
                    cells = [
                        _fmt(metric, per.get(b, {}).get(k, {}).get(metric)) for b, k in buckets
                    ]
                    lines.append(f"| {method} | " + " | ".join(cells) + " |")
                lines.append("")
    if results.get("fid_network"):
        lines += [f"FID network: {results['fid_network']}", ""]
    lines.append("Methods:")
    lines.append("")
    for name, m in results["methods"].items():
        extra = (
            f", checkpoint `{m['checkpoint']}` (SHA-256 `{(m['checkpoint_sha256'] or '')[:12]}`)"
            if m["checkpoint"]
            else ""
        )
        lines.append(f"* `{name}`: {m['label']}{extra}")
    t = results.get("timing", {})
    if t:
        lines += ["", "Speed (inference only, this machine):", ""]
        for name, ips in t.get("images_per_second", {}).items():
            lines.append(f"* `{name}`: {ips:.2f} images/s")
        lines.append(
            f"* whole evaluation: {t['pairs_evaluated']} image x method results in "
            f"{t['wall_seconds']:.1f} s ({t['overall_per_second']:.2f}/s incl. metrics)"
        )
    return "\n".join(lines) + "\n"


def _csv(records: list[dict]) -> str:
    names = _metric_names(records)
    head = ["suite", "method", "pair", "image", "mask", "hole_ratio", "bucket", "border"] + names
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(head)
    for r in records:
        writer.writerow([("" if r.get(h) is None else r.get(h)) for h in head])
    return buffer.getvalue()


def _plots(records, aggregates) -> dict[str, bytes]:
    # Loaded on use: a heavy or optional library only this feature needs.
    import matplotlib

    matplotlib.use("Agg")
    # Loaded on use: a heavy or optional library only this feature needs.
    import matplotlib.pyplot as plt

    written = {}

    def png(fig) -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        return buffer.getvalue()

    methods = list(dict.fromkeys(r["method"] for r in records))
    for metric in ("psnr_hole", "l1_hole"):
        fig, ax = plt.subplots(figsize=(6, 4), dpi=80)
        edges = np.linspace(0, 0.6, 7)
        for i, m in enumerate(methods):
            rows = [r for r in records if r["method"] == m and r.get(metric) is not None]
            x = np.array([r["hole_ratio"] for r in rows])
            y = np.array([r[metric] for r in rows], dtype=float)
            ax.scatter(x, y, s=8, alpha=0.35, color=f"C{i}")
            centres, means = [], []
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                sel = (x > lo) & (x <= hi) & np.isfinite(y)
                if sel.any():
                    centres.append((lo + hi) / 2)
                    means.append(y[sel].mean())
            ax.plot(centres, means, "-o", color=f"C{i}", label=m, markersize=4)
        ax.set_xlabel("hole ratio")
        ax.set_ylabel(metric + (" (dB)" if metric.startswith("psnr") else ""))
        ax.set_title(f"{metric} vs hole ratio (all suites; lines = means per 0.1 bin)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        written[f"{metric}_vs_hole_ratio.png"] = png(fig)
    for suite, agg in aggregates.items():
        fig, axes = plt.subplots(1, 3, figsize=(9, 3), dpi=80)
        names = list(agg["methods"])
        for ax, metric in zip(axes, ("psnr_hole", "ssim", "l1_hole"), strict=True):
            vals = [agg["methods"][m].get(metric) or 0.0 for m in names]
            ax.bar(range(len(names)), vals, color=[f"C{methods.index(m)}" for m in names])
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=30, ha="right", fontsize=7)
            ax.set_title(metric + _arrow(metric), fontsize=9)
        fig.suptitle(f"suite {suite}", fontsize=10)
        fig.tight_layout()
        written[f"bars_{suite}.png"] = png(fig)
    return written


def contact_sheet(
    rows: list[tuple[str, np.ndarray, np.ndarray, dict, np.ndarray]], methods: list[str]
):
    """Image (uint8 RGB) with one row per case: input | mask | each method | ground truth."""
    size = rows[0][1].shape[0]
    tile = min(size, 160)
    pad, head, side = 4, 16, 70
    cols = ["input", "mask"] + methods + ["ground truth"]
    width = side + len(cols) * (tile + pad)
    height = head + len(rows) * (tile + pad)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(cols):
        draw.text((side + c * (tile + pad) + 2, 2), name[:24], fill=(0, 0, 0))
    for r, (label, image, mask, outs, _) in enumerate(rows):
        y = head + r * (tile + pad)
        draw.text((2, y + tile // 2 - 6), label, fill=(0, 0, 0))
        hole = mask > 0.5
        blank = image.copy()
        blank[hole] = 255
        tiles = [blank, np.repeat((hole * 255).astype(np.uint8)[..., None], 3, -1)]
        tiles += [outs[m] for m in methods] + [image]
        for c, t in enumerate(tiles):
            im = Image.fromarray(t).resize((tile, tile), Image.BILINEAR)
            sheet.paste(im, (side + c * (tile + pad), y))
    return np.asarray(sheet)


def write_report(output: str, results: dict, records: list[dict], sheets: dict) -> list[str]:
    """Render every report file in memory, then write them one after the other at the end,
    each atomically through ``deepfill_tf.fileio.write_atomic``."""
    rendered = {
        "results.json": json.dumps(
            {**results, "per_image": records}, indent=1, default=_json_default
        )
        + "\n",
        "results.csv": _csv(records),
        "summary.md": summary_markdown(results),
    }
    rendered.update(_plots(records, results["aggregates"]))
    for suite, sheet in sheets.items():
        buffer = io.BytesIO()
        Image.fromarray(sheet).save(buffer, format="PNG")
        rendered[f"contact_sheet_{suite}.png"] = buffer.getvalue()
    for name, data in rendered.items():
        write_atomic(os.path.join(output, name), data)
    return list(rendered)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(type(o).__name__)


def compare_reports(folders: list[str]) -> str:
    """Markdown tables putting several reports side by side (rows = folder: method)."""
    reports = []
    for folder in folders:
        path = os.path.join(folder, "results.json")
        try:
            with open(path) as f:
                reports.append((folder, json.load(f)))
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable evaluation report ({e})") from None
    suites = list(dict.fromkeys(s for _, r in reports for s in r["aggregates"]))
    lines = ["# Comparison", ""]
    for folder, r in reports:
        s = r["settings"]
        lines.append(
            f"* `{folder}`: data `{s['data']}`, size {s['size']} ({s['resize_mode']}), "
            f"seed {s['seed']}, deepfill_tf {r.get('software', {}).get('deepfill_tf', '?')}"
        )
    lines.append("")
    cols = list(METRICS)
    for suite in suites:
        hashes = {r["suites"][suite]["set_sha256"] for _, r in reports if suite in r["suites"]}
        note = "same masks" if len(hashes) == 1 else "DIFFERENT mask sets: not comparable"
        lines += [f"## Suite `{suite}` ({note})", ""]
        lines.append("| report | method | " + " | ".join(c + _arrow(c) for c in cols) + " | fid |")
        lines.append("|---|---|" + "---|" * (len(cols) + 1))
        for folder, r in reports:
            agg = r["aggregates"].get(suite)
            if not agg:
                continue
            for method, values in agg["methods"].items():
                fid = r.get("fid", {}).get(suite, {}).get(method)
                cells = [_fmt(c, values.get(c)) for c in cols] + [_fmt("fid", fid)]
                lines.append(
                    f"| {os.path.basename(os.path.normpath(folder))} | {method} | "
                    + " | ".join(cells)
                    + " |"
                )
        lines.append("")
    return "\n".join(lines) + "\n"
