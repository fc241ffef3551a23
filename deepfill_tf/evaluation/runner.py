"""Run models and classical baselines over images x mask suites, resumably.

Pairing (deterministic, recorded per row): with I images (sorted paths, or the TFDS split in
its stored order) and M masks (manifest order), the suite has ``P = max(I, M)`` pairs and
pair ``k`` is image ``k mod I`` with mask ``k mod M``: every image and every mask is used.

Images are brought to ``size`` x ``size`` by ``resize_mode``: ``crop`` (default: the centred
window, no scaling), ``scale-crop`` (shorter side scaled to ``size`` with bicubic filtering,
then the centred window) or ``resize`` (the whole image, bicubic, aspect ratio not kept).
An image smaller than ``size`` on either side is an error in every mode.

Batches of pairs flow through a ``tf.data`` pipeline (parallel, order-preserving reads);
each batch goes through every method, then its per-pair metrics are appended to the resume
file ``<output>/evaluate.resume.jsonl`` (and Inception features, when FID is on, to
``<output>/evaluate.resume/``). A killed run started again with the same arguments skips the
batches already there, so it ends with the same numbers as an uninterrupted run.

Baselines: ``opencv_telea`` / ``opencv_ns`` (``cv2.inpaint``, Telea 2004 / Navier-Stokes,
radius ``BASELINE_RADIUS``) and ``mean_fill`` (each hole pixel = the mean colour of the known
pixels, rounded).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from deepfill_tf.errors import CheckpointError, ConfigError, InputError
from deepfill_tf.evaluation.metrics import image_metrics
from deepfill_tf.inference.io import read_image

__all__ = [
    "BASELINES",
    "RESIZE_MODES",
    "DataSource",
    "Method",
    "baseline_method",
    "checkpoint_sha256",
    "load_model_method",
    "open_data",
    "prepare_image",
    "run_evaluation",
]

BASELINES = ("opencv_telea", "opencv_ns", "mean_fill")
BASELINE_RADIUS = 5
RESIZE_MODES = ("crop", "scale-crop", "resize")
RESUME_FILE = "evaluate.resume.jsonl"
RESUME_DIR = "evaluate.resume"

InferFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]]


@dataclasses.dataclass
class Method:
    """One column of the report.

    ``infer(images (B,S,S,3) uint8 RGB, masks (B,S,S) float32 1 = hole)`` returns the
    composites (B,S,S,3) uint8 and the raw network outputs (or None when the method has no
    raw output distinct from the composite).
    """

    name: str
    kind: str  # "baseline" or "model"
    label: str
    infer: InferFn
    family: str | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "label": self.label,
            "family": self.family,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
        }


# ------------------------------------------------------------------------------ baselines


def _opencv(flag_name: str) -> InferFn:
    def infer(images, masks):
        # Loaded on use: a heavy or optional library only this feature needs.
        import cv2

        flag = getattr(cv2, flag_name)
        out = []
        for image, mask in zip(images, masks, strict=True):
            hole = (mask > 0.5).astype(np.uint8) * 255
            bgr = np.ascontiguousarray(image[..., ::-1])
            filled = cv2.inpaint(bgr, hole, BASELINE_RADIUS, flag)[..., ::-1]
            out.append(np.where(hole[..., None] > 0, filled, image))
        return np.stack(out).astype(np.uint8), None

    return infer


def _mean_fill(images, masks):
    out = images.copy()
    for k, (image, mask) in enumerate(zip(images, masks, strict=True)):
        hole = mask > 0.5
        colour = image[~hole].mean(axis=0) if (~hole).any() else np.full(3, 127.5)
        out[k][hole] = np.round(colour).astype(np.uint8)
    return out, None


def baseline_method(name: str) -> Method:
    """A classical baseline by name (``BASELINES``)."""
    if name == "opencv_telea":
        return Method(
            name, "baseline", f"OpenCV Telea (radius {BASELINE_RADIUS})", _opencv("INPAINT_TELEA")
        )
    if name == "opencv_ns":
        return Method(
            name,
            "baseline",
            f"OpenCV Navier-Stokes (radius {BASELINE_RADIUS})",
            _opencv("INPAINT_NS"),
        )
    if name == "mean_fill":
        return Method(name, "baseline", "mean colour of the known pixels", _mean_fill)
    raise ConfigError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")


# ------------------------------------------------------------------------------ models


def checkpoint_sha256(checkpoint: str) -> str | None:
    """SHA-256 over the checkpoint's files (sorted names and contents); None if unreadable."""
    path = os.fspath(checkpoint)
    if os.path.isdir(path):
        files = sorted(os.path.join(root, f) for root, _, names in os.walk(path) for f in names)
    else:
        folder, prefix = os.path.split(os.path.abspath(path))
        files = (
            sorted(
                os.path.join(folder, f) for f in os.listdir(folder or ".") if f.startswith(prefix)
            )
            if os.path.isdir(folder or ".")
            else []
        )
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(os.path.relpath(file, os.path.dirname(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _family_infer(inp) -> InferFn:
    """Batched composite and raw output through the family contract, traced once.

    The same steps as ``deepfill_tf.inference.inpaint_uint8``: reflect-pad to the family's
    ``size_multiple``, ``family.predict`` on [0, 255] RGB, crop back, ``family.composite``.
    The raw output is ``family.composite`` with every pixel treated as hole.
    """
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    import tensorflow as tf

    from deepfill_tf.ops.gating import exact_native_gating

    family, generator, options = inp.family, inp.generator, dict(inp.options)
    multiple = int(getattr(family, "size_multiple", 8))

    def pad(x, pad_h, pad_w):
        return tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8),
            tf.TensorSpec([None, None, None, 1], tf.float32),
        ]
    )
    def run(image, mask):
        h, w = tf.shape(image)[1], tf.shape(image)[2]
        pad_h, pad_w = (-h) % multiple, (-w) % multiple
        x = pad(tf.cast(image, tf.float32), pad_h, pad_w)
        # Traced as the CLI's Inpainter traces it: the bit-exact gating kernel
        # (deepfill_tf.ops.gating), the exported model's pixels all the same.
        with exact_native_gating():
            predicted = family.predict(generator, x, pad(mask, pad_h, pad_w), {})
        predicted = predicted[:, :h, :w, :]
        hole = tf.broadcast_to(mask > 0.5, tf.shape(predicted))
        composite = family.composite(predicted, image, hole, options)
        raw = family.composite(predicted, image, tf.ones_like(hole), options)
        return composite, raw

    def infer(images, masks):
        composite, raw = run(images, masks[..., None].astype(np.float32))
        return composite.numpy(), raw.numpy()

    return infer


def load_model_method(checkpoint: str, family: str = "auto") -> Method:
    """Load a checkpoint of any registered family as a ``Method``.

    Loaded with ``deepfill_tf.inference.load_inpainter``. Families on the generic pipeline run
    batched through their ``predict`` / ``composite`` (raw output available); families with
    an inpainter of their own run image by image (composite only). Raises ``CheckpointError``
    for a missing checkpoint, one of another family than ``family``, or a model that needs
    extra image inputs (a guided DeepFill v2's edges, SC-FEGAN's sketch).
    """
    if not os.path.exists(checkpoint) and not any(
        os.path.exists(checkpoint + ext) for ext in (".index", ".meta")
    ):
        raise CheckpointError(f"{checkpoint}: no such checkpoint file or folder")
    digest = checkpoint_sha256(checkpoint)
    name = os.path.basename(os.path.normpath(checkpoint)) or checkpoint
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.inference import Inpainter, load_inpainter

    inp = load_inpainter(checkpoint, model=family)
    fam = inp.family
    family_name = str(fam.name)
    label = str(getattr(inp, "label", None) or fam.label)
    cnum = (getattr(getattr(inp, "spec", None), "options", None) or {}).get("cnum")
    if cnum and "cnum" not in label:
        label = f"{label} (cnum {cnum})"
    required = [o.name for o in getattr(inp, "inputs", ()) if getattr(o, "required", False)]
    if required:
        raise CheckpointError(
            f"{checkpoint}: this {fam.label} model needs {', '.join(required)} images, which "
            "evaluate cannot supply"
        )
    if type(inp) is Inpainter:  # the generic pipeline: batched, with the raw output
        infer = _family_infer(inp)
    else:  # a family's own inpainter (host-side steps): image by image, composite only

        def infer(images, masks):
            return np.stack([inp(i, m) for i, m in zip(images, masks, strict=True)]), None

    return Method(name, "model", label, infer, family_name, os.path.abspath(checkpoint), digest)


# ------------------------------------------------------------------------------ data


def prepare_image(image: np.ndarray, size: int, mode: str, where: str = "image") -> np.ndarray:
    """(h, w, 3) uint8 RGB -> (size, size, 3) uint8 RGB by ``mode`` (``RESIZE_MODES``)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        raise InputError(f"{where} is {w}x{h}, smaller than --size {size}; use a smaller --size")
    if mode == "resize":
        return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))
    if mode == "scale-crop":
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BICUBIC))
        h, w = nh, nw
    elif mode != "crop":
        raise ConfigError(
            f"unknown --resize-mode {mode!r}; choose one of {', '.join(RESIZE_MODES)}"
        )
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])


@dataclasses.dataclass
class DataSource:
    """Image names and a reader (index -> (H, W, 3) uint8 RGB)."""

    spec: str
    names: list[str]
    read: Callable[[int], np.ndarray]

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()


def open_data(spec: str, size: int) -> DataSource:
    """A folder, ``.flist``, glob or ``tfds:NAME[:SPLIT]``; sizes are checked up front.

    Raises:
        ConfigError / InputError: nothing found, unreadable files, images smaller than size.
    """
    if spec.startswith("tfds:"):
        return _tfds_source(spec)

    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.data.pipeline import resolve_source

    if os.path.isdir(spec):
        from deepfill_tf.data.folder import list_images

        paths = list_images(spec)  # ConfigError when empty
    else:
        paths = resolve_source(spec)
    for p in paths:
        try:
            with Image.open(p) as im:
                w, h = im.size
        except (OSError, ValueError):
            raise InputError(f"{p}: not a readable image") from None
        if w < size or h < size:
            raise InputError(f"{p} is {w}x{h}, smaller than --size {size}; use a smaller --size")
    return DataSource(spec, paths, lambda i: read_image(paths[i]))


def _tfds_source(spec: str) -> DataSource:
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.data.tfds import tfds_images

    state = {"it": None, "next": 0}

    def restart():
        ds = tfds_images(spec[len("tfds:") :], shuffle_files=False)
        state["it"], state["next"] = iter(ds.as_numpy_iterator()), 0

    restart()
    try:
        import tensorflow_datasets as tfds

        from deepfill_tf.data.tfds import parse_tfds_name

        name, split = parse_tfds_name(spec[len("tfds:") :])
        count = tfds.builder(name).info.splits[split].num_examples
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"{spec}: cannot read the split size ({e})") from None

    def read(i):
        if i < state["next"]:
            restart()
        while True:
            image = next(state["it"])[..., ::-1]  # BGR -> RGB
            state["next"] += 1
            if state["next"] - 1 == i:
                return np.ascontiguousarray(image)

    return DataSource(spec, [f"{spec}#{i}" for i in range(count)], read)


# ------------------------------------------------------------------------------ running


class Progress:
    """One stderr line: done/total, rate, ETA (redrawn in place on a terminal)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.start = total, 0, time.time()
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0

    def update(self, n: int, what: str) -> None:
        self.done += n
        now = time.time()
        if not self.tty and now - self.last < 5 and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{rate:.2f} img/s ETA {int(eta // 60):d}:{int(eta % 60):02d} {what}"
        )
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _read_resume(path: str, fingerprint: str) -> dict:
    """Records already computed: {(suite, batch_start): {method: [records]}}."""
    done: dict = {}
    if not os.path.isfile(path):
        return done
    with open(path) as f:
        lines = f.read().split("\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = {}
    if header.get("fingerprint") != fingerprint:
        raise InputError(
            f"{path} belongs to another evaluation (other data, masks, methods or settings); "
            "use another --output or delete it"
        )
    for line in lines[1:]:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            break  # a line cut by a kill: everything after it is recomputed
        done[(rec["suite"], rec["batch"])] = rec
    return done


def run_evaluation(
    *,
    data: DataSource,
    suites: list,
    methods: list[Method],
    size: int,
    resize_mode: str,
    output: str,
    batch_size: int = 4,
    raw: bool = False,
    features=None,
    settings: dict | None = None,
    stop_after_batches: int | None = None,
    progress_stream=None,
) -> dict:
    """Evaluate every method on every suite; returns the per-pair records and timings.

    ``features`` (an ``InceptionFeatures`` or None) turns FID on. ``stop_after_batches``
    raises ``KeyboardInterrupt`` after that many newly computed batches (tests use it to
    simulate a killed run). The returned dict has ``records`` (list of per-pair, per-method
    dicts), ``seconds`` ({method: inference seconds}) and ``features`` ({(suite, method):
    array}).
    """
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    import tensorflow as tf

    os.makedirs(output, exist_ok=True)
    fingerprint = _fingerprint(settings or {})
    resume_path = os.path.join(output, RESUME_FILE)
    feature_dir = os.path.join(output, RESUME_DIR)
    done = _read_resume(resume_path, fingerprint)
    if not os.path.isfile(resume_path) or not done:
        with open(resume_path, "w") as f:
            f.write(json.dumps({"fingerprint": fingerprint, "settings": settings}) + "\n")
    if features is not None:
        os.makedirs(feature_dir, exist_ok=True)

    plan = []
    for suite in suites:
        pairs = max(len(data.names), len(suite.entries))
        for start in range(0, pairs, batch_size):
            plan.append((suite, start, min(start + batch_size, pairs)))
    total = sum(stop - start for _, start, stop in plan) * len(methods)
    progress = Progress(total, progress_stream)
    cache: dict[int, np.ndarray] = {}

    def load_pair(suite, k):
        i = k % len(data.names)
        if i not in cache:
            if len(cache) > 64:
                cache.clear()
            cache[i] = prepare_image(data.read(i), size, resize_mode, data.names[i])
        return cache[i], suite.mask(k % len(suite.entries)).astype(np.float32)

    new_batches = 0
    with open(resume_path, "a") as log:
        for suite in suites:
            todo = [(s, a, b) for s, a, b in plan if s is suite and (suite.name, a) not in done]
            if not todo:
                continue
            starts = [a for _, a, _ in todo]
            stops = {a: b for _, a, b in todo}

            def gen(suite=suite, starts=starts, stops=stops):
                for a in starts:
                    imgs, msks = zip(
                        *(load_pair(suite, k) for k in range(a, stops[a])), strict=True
                    )
                    yield np.int64(a), np.stack(imgs), np.stack(msks)

            ds = tf.data.Dataset.from_generator(
                gen,
                output_signature=(
                    tf.TensorSpec([], tf.int64),
                    tf.TensorSpec([None, size, size, 3], tf.uint8),
                    tf.TensorSpec([None, size, size], tf.float32),
                ),
            ).prefetch(2)
            for a, images, masks in ds.as_numpy_iterator():
                a = int(a)
                rec = {"suite": suite.name, "batch": a, "methods": {}, "seconds": {}}
                batch_feats = {}
                if features is not None:
                    batch_feats["__real__"] = features(images)
                for method in methods:
                    t0 = time.perf_counter()
                    composite, raw_out = method.infer(images, masks)
                    rec["seconds"][method.name] = time.perf_counter() - t0
                    rows = []
                    for j in range(len(images)):
                        row = image_metrics(composite[j], images[j], masks[j])
                        if raw:
                            if raw_out is not None:
                                row.update(
                                    {
                                        f"raw_{k}": v
                                        for k, v in image_metrics(
                                            raw_out[j], images[j], masks[j]
                                        ).items()
                                    }
                                )
                            else:
                                row["raw_available"] = False
                        rows.append(row)
                    rec["methods"][method.name] = rows
                    if features is not None:
                        batch_feats[method.name] = features(composite)
                    progress.update(len(images), f"{suite.name} {method.name}")
                if features is not None:
                    np.savez(os.path.join(feature_dir, f"{suite.name}_{a:09d}.npz"), **batch_feats)
                log.write(json.dumps(rec) + "\n")
                log.flush()
                os.fsync(log.fileno())
                done[(suite.name, a)] = rec
                new_batches += 1
                if stop_after_batches is not None and new_batches >= stop_after_batches:
                    raise KeyboardInterrupt

    records, seconds, feats = [], {m.name: 0.0 for m in methods}, {}
    for suite in suites:
        pairs = max(len(data.names), len(suite.entries))
        for a in range(0, pairs, batch_size):
            rec = done[(suite.name, a)]
            for m in methods:
                seconds[m.name] += rec["seconds"][m.name]
                for j, row in enumerate(rec["methods"][m.name]):
                    k = a + j
                    entry = suite.entries[k % len(suite.entries)]
                    records.append(
                        {
                            "suite": suite.name,
                            "method": m.name,
                            "pair": k,
                            "image": data.names[k % len(data.names)],
                            "mask": entry["file"],
                            "hole_ratio": entry["hole_ratio"],
                            "bucket": entry.get("bucket"),
                            "border": entry.get("border"),
                            **row,
                        }
                    )
            if features is not None:
                with np.load(os.path.join(feature_dir, f"{suite.name}_{a:09d}.npz")) as z:
                    for key in z.files:
                        feats.setdefault((suite.name, key), []).append(z[key])
    feats = {k: np.concatenate(v) for k, v in feats.items()}
    return {
        "records": records,
        "seconds": seconds,
        "features": feats,
        "pairs_per_method": {s.name: max(len(data.names), len(s.entries)) for s in suites},
    }


def clear_resume(output: str) -> None:
    """Remove the resume file and feature folder after the report is written."""
    path = os.path.join(output, RESUME_FILE)
    if os.path.isfile(path):
        os.unlink(path)
    shutil.rmtree(os.path.join(output, RESUME_DIR), ignore_errors=True)


def pair_outputs(data: DataSource, suite, methods, k: int, size: int, resize_mode: str):
    """(image, mask, {method: composite}) of pair ``k`` (for contact sheets)."""
    image = prepare_image(
        data.read(k % len(data.names)), size, resize_mode, data.names[k % len(data.names)]
    )
    mask = suite.mask(k % len(suite.entries)).astype(np.float32)
    outs = {m.name: m.infer(image[None], mask[None])[0][0] for m in methods}
    return image, mask, outs
