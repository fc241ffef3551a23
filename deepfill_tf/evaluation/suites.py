"""Fixed, versioned, checksummed evaluation mask suites.

A suite is a folder of 8-bit grayscale PNGs (255 = hole, 0 = valid; what ``deepfill-tf
inpaint --mask`` reads) plus ``manifest.json``: suite name and version, image size,
generator parameters, seed, per-mask hole ratio / bucket / border flag and SHA-256, and the
SHA-256 of the whole set. Mask ``i`` is drawn from its own ``np.random.RandomState([seed,
suite code, ..., i])``, so the same arguments give byte-identical files on every run and the
first N masks of a longer suite equal those of a shorter one.

Suites (all square, side S):

* ``box``: DeepFill's training box (inpaint.yml): a box of S/2 x S/2 at a uniform position
  (margins 0), shrunk on each side by a random amount in [0, S/16] (max_delta S/8) - the
  ``deepfill_tf.masks.random_box_mask`` generator.
* ``center``: the centred square of half the side (Context Encoders / GLCIC: 64 x 64 in
  128 x 128); every mask is the same.
* ``freeform``: DeepFill v2's brush strokes (``deepfill_tf.masks.brush_stroke_mask``, the
  published generator's parameters).
* ``irregular``: the partial-convolution test protocol (Liu et al., ECCV 2018): six
  hole-ratio buckets (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6], each with N masks whose holes
  keep ``border_margin(S)`` pixels (50 px at 512, scaled with S) away from the image border
  and N masks whose holes enter that band. Drawn by the package's irregular-mask generator
  (``deepfill_tf.masks.irregular.irregular_mask``); ``from_dir`` buckets a folder of NVIDIA
  Irregular Mask Dataset files (0 = hole there) into the same manifest.
* ``thin``, ``medium``, ``thick``: LaMa's evaluation masks (Suvorov et al., WACV 2022;
  advimman/lama ``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml``, generator
  ``saicinpainting/training/data/masks.py``: ``MixedMaskGenerator`` of line strokes and, for
  medium/thick, boxes with probability 0.3/1.3; masks covering more than half the image are
  redrawn, ``max_tamper_area: 0.5``). The 256 and 512 configs are used as they are at those
  sizes; other sizes use the nearer config with its lengths scaled by S/256 or S/512.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os

import numpy as np
from PIL import Image

from deepfill_tf.data.folder import list_images
from deepfill_tf.errors import ConfigError, InputError
from deepfill_tf.fileio import write_atomic
from deepfill_tf.inference.io import read_image, read_mask

__all__ = [
    "IRREGULAR_BUCKETS",
    "SUITES",
    "Suite",
    "border_margin",
    "bucket_of",
    "from_dir",
    "generate_suite",
    "load_suite",
    "touches_border",
    "write_suite",
]

SUITES = ("box", "center", "freeform", "irregular", "thin", "medium", "thick")
SUITE_VERSIONS = {name: 1 for name in SUITES}
_SUITE_CODES = {name: i + 1 for i, name in enumerate(SUITES)}
IRREGULAR_BUCKETS = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
MANIFEST = "manifest.json"
FORMAT = "deepfill_tf mask suite"


def border_margin(size: int) -> int:
    """Width of the border band for the irregular suite: 50 px at 512, scaled with the side."""
    return max(1, int(round(50 * size / 512)))


def bucket_label(bucket: tuple[float, float]) -> str:
    return f"({bucket[0]:g}, {bucket[1]:g}]"


def bucket_of(ratio: float) -> str | None:
    """Label of the half-open bucket (lo, hi] holding ``ratio``, or None outside (0.01, 0.6]."""
    for lo, hi in IRREGULAR_BUCKETS:
        if lo < ratio <= hi:
            return bucket_label((lo, hi))
    return None


def touches_border(hole: np.ndarray, margin: int) -> bool:
    """True if any hole pixel lies within ``margin`` pixels of the image border."""
    h = np.asarray(hole) > 0.5
    return bool(
        h[:margin].any() or h[-margin:].any() or h[:, :margin].any() or h[:, -margin:].any()
    )


def _rng(seed: int, *keys: int) -> np.random.RandomState:
    return np.random.RandomState(np.array([seed % 2**32, *keys], dtype=np.uint32))


# ------------------------------------------------------------------------------- generators


def _box(size: int, rs: np.random.RandomState) -> np.ndarray:
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.masks import BoxParams, random_box_mask

    p = BoxParams.for_image(size, size)
    _, mask = random_box_mask(
        (size, size),
        p.height,
        p.width,
        p.max_delta_height,
        p.max_delta_width,
        p.vertical_margin,
        p.horizontal_margin,
        rng=rs,
    )
    return mask[0, :, :, 0]


def _center(size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    side = size // 2
    top = (size - side) // 2
    mask[top : top + side, top : top + side] = 1.0
    return mask


def _freeform(size: int, rs: np.random.RandomState) -> np.ndarray:
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.masks import brush_stroke_mask

    return brush_stroke_mask(size, size, rng=rs)[0, :, :, 0]


# LaMa's configs (advimman/lama configs/data_gen/random_<kind>_<size>.yaml), as published.
LAMA_CONFIGS = {
    ("thin", 256): {
        "irregular": dict(min_times=4, max_times=50, max_width=10, max_angle=4, max_len=40),
        "box": None,
    },
    ("thin", 512): {
        "irregular": dict(min_times=4, max_times=70, max_width=20, max_angle=4, max_len=100),
        "box": None,
    },
    ("medium", 256): {
        "irregular": dict(min_times=4, max_times=5, max_width=50, max_angle=4, max_len=100),
        "box": dict(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5),
    },
    ("medium", 512): {
        "irregular": dict(min_times=4, max_times=10, max_width=100, max_angle=4, max_len=200),
        "box": dict(margin=0, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=5),
    },
    ("thick", 256): {
        "irregular": dict(min_times=1, max_times=5, max_width=100, max_angle=4, max_len=200),
        "box": dict(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3),
    },
    ("thick", 512): {
        "irregular": dict(min_times=1, max_times=5, max_width=250, max_angle=4, max_len=450),
        "box": dict(margin=10, bbox_min_size=30, bbox_max_size=300, min_times=1, max_times=4),
    },
}
LAMA_IRREGULAR_PROBA, LAMA_BOX_PROBA, LAMA_MAX_TAMPER_AREA = 1.0, 0.3, 0.5
_LAMA_LENGTH_KEYS = ("max_width", "max_len", "margin", "bbox_min_size", "bbox_max_size")


def lama_parameters(kind: str, size: int) -> dict:
    """LaMa's generator settings for ``kind`` at side ``size`` (scaled from 256 or 512)."""
    base = 256 if size <= 384 else 512
    config = LAMA_CONFIGS[(kind, base)]
    scale = size / base
    out = {"config": f"advimman/lama configs/data_gen/random_{kind}_{base}.yaml", "scale": scale}
    for part in ("irregular", "box"):
        params = config[part]
        if params is not None and scale != 1:
            params = {
                k: (max(1, int(round(v * scale))) if k in _LAMA_LENGTH_KEYS else v)
                for k, v in params.items()
            }
        out[part] = params
    out["irregular_proba"] = LAMA_IRREGULAR_PROBA
    out["box_proba"] = LAMA_BOX_PROBA if config["box"] is not None else 0.0
    out["max_tamper_area"] = LAMA_MAX_TAMPER_AREA
    return out


def _lama_lines(size, rs, max_angle, max_len, max_width, min_times, max_times):
    """LaMa's ``make_random_irregular_mask`` (DrawMethod.LINE), in its RNG call order."""
    # Loaded on use: a heavy or optional library only this feature needs.
    import cv2

    mask = np.zeros((size, size), np.float32)
    times = rs.randint(min_times, max_times + 1)
    for i in range(times):
        x, y = int(rs.randint(size)), int(rs.randint(size))
        for _ in range(1 + rs.randint(5)):
            angle = 0.01 + rs.randint(max_angle)
            if i % 2 == 0:
                angle = 2 * 3.1415926 - angle
            length = 10 + rs.randint(max_len)
            width = 5 + rs.randint(max_width)
            ex = int(np.clip(np.int32(x + length * np.sin(angle)), 0, size))
            ey = int(np.clip(np.int32(y + length * np.cos(angle)), 0, size))
            cv2.line(mask, (x, y), (ex, ey), 1.0, int(width))
            x, y = ex, ey
    return mask


def _lama_boxes(size, rs, margin, bbox_min_size, bbox_max_size, min_times, max_times):
    """LaMa's ``make_random_rectangle_mask``, in its RNG call order."""
    mask = np.zeros((size, size), np.float32)
    bbox_max_size = min(bbox_max_size, size - 2 * margin)
    for _ in range(rs.randint(min_times, max_times + 1)):
        bw = rs.randint(bbox_min_size, bbox_max_size)
        bh = rs.randint(bbox_min_size, bbox_max_size)
        x = rs.randint(margin, size - margin - bw + 1)
        y = rs.randint(margin, size - margin - bh + 1)
        mask[y : y + bh, x : x + bw] = 1.0
    return mask


def _lama(kind: str, size: int, rs: np.random.RandomState) -> np.ndarray:
    params = lama_parameters(kind, size)
    probas = np.array(
        [params["irregular_proba"]] + ([params["box_proba"]] if params["box"] else []), "float32"
    )
    probas /= probas.sum()
    for _ in range(1000):  # gen_mask_dataset.py drops masks over max_tamper_area
        choice = rs.choice(len(probas), p=probas)
        if choice == 0:
            mask = _lama_lines(size, rs, **params["irregular"])
        else:
            mask = _lama_boxes(size, rs, **params["box"])
        if 0 < mask.mean() <= params["max_tamper_area"]:
            return mask
    raise ConfigError(f"{kind} masks: no mask under the area limit in 1000 draws at {size}")


def _irregular(size, seed, key, bucket, border, margin):
    """One irregular mask of ``bucket`` whose holes do (``border``) or do not enter the band.

    Drawn by ``deepfill_tf.masks.irregular.irregular_mask`` (strokes and blobs up to a target
    ratio); for "no border" masks its ``margin`` keeps the band free. Draws whose ratio falls
    on a bucket's closed lower edge, or border masks that miss the band, are redrawn from the
    next sub-seed.
    """
    # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
    from deepfill_tf.masks.irregular import IrregularParams, irregular_mask

    lo, hi = bucket
    params = IrregularParams(hole_ratio=(lo, hi), margin=0 if border else margin)
    for attempt in range(200):
        mask = irregular_mask((size, size), [*key, attempt], params)[0, :, :, 0]
        ratio = float((mask > 0.5).mean())
        if lo < ratio <= hi and touches_border(mask, margin) == border:
            return mask
    raise ConfigError(
        f"irregular masks: no {'border' if border else 'no-border'} mask in {bucket} at {size}"
    )


# ------------------------------------------------------------------------------- suites


@dataclasses.dataclass
class Suite:
    """A generated or loaded suite: masks as (H, W) float32 arrays (1 = hole) or files."""

    name: str
    size: int
    seed: int | None
    parameters: dict
    entries: list[dict]  # file, hole_ratio, bucket, border, sha256 (and the array under "mask")
    version: int = 1
    directory: str | None = None
    set_sha256: str | None = None

    def mask(self, i: int) -> np.ndarray:
        entry = self.entries[i]
        if "mask" in entry:
            return entry["mask"]

        return read_mask(os.path.join(self.directory, entry["file"]))

    def manifest(self) -> dict:
        entries = [{k: v for k, v in e.items() if k != "mask"} for e in self.entries]
        return {
            "format": FORMAT,
            "suite": self.name,
            "version": self.version,
            "size": [self.size, self.size],
            "seed": self.seed,
            "count": len(entries),
            "convention": "8-bit grayscale PNG, 255 = hole, 0 = valid",
            "parameters": self.parameters,
            "masks": entries,
            "set_sha256": self.set_sha256 or set_hash(entries),
        }


def set_hash(entries: list[dict]) -> str:
    """SHA-256 of the lines ``"<file> <sha256>\\n"`` in manifest order."""
    text = "".join(f"{e['file']} {e['sha256']}\n" for e in entries)
    return hashlib.sha256(text.encode()).hexdigest()


def _png(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(((np.asarray(mask) > 0.5) * 255).astype(np.uint8), mode="L").save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def generate_suite(name: str, size: int, count: int, seed: int) -> Suite:
    """Generate suite ``name`` at ``size`` x ``size``.

    ``count`` is the number of masks, except for ``irregular`` where it is the number per
    bucket and border class (12 * count masks in all).
    """
    if name not in SUITES:
        raise ConfigError(f"unknown mask suite {name!r}; choose one of {', '.join(SUITES)}")
    if size < 16:
        raise ConfigError(f"mask suites need a size of at least 16, got {size}")
    if count < 1:
        raise ConfigError(f"--count must be at least 1, got {count}")
    code = _SUITE_CODES[name]
    digits = max(5, len(str(count * 12)))
    entries: list[dict] = []

    def add(mask, **info):
        mask = (np.asarray(mask) > 0.5).astype(np.float32)
        data = _png(mask)
        file = f"{name}_{len(entries):0{digits}d}.png"
        entries.append(
            {
                "file": file,
                "hole_ratio": round(float(mask.mean()), 6),
                **info,
                "sha256": hashlib.sha256(data).hexdigest(),
                "mask": mask,
                "png": data,
            }
        )

    if name == "box":
        from deepfill_tf.masks import BoxParams

        p = BoxParams.for_image(size, size)
        hole_min = (p.height - 2 * (p.max_delta_height // 2)) * (
            p.width - 2 * (p.max_delta_width // 2)
        )
        params = {
            "generator": "deepfill_tf.masks.random_box_mask (DeepFill inpaint.yml box)",
            **dataclasses.asdict(p),
            "ratio_range": [hole_min / size**2, p.height * p.width / size**2],
        }
        for i in range(count):
            add(_box(size, _rng(seed, code, i)), bucket=None, border=None)
    elif name == "center":
        side = size // 2
        params = {
            "generator": "centred square",
            "side": side,
            "ratio_range": [side**2 / size**2] * 2,
        }
        for _ in range(count):
            add(_center(size), bucket=None, border=None)
    elif name == "freeform":
        from deepfill_tf.masks.free_form import DEFAULT_BRUSH

        params = {
            "generator": "deepfill_tf.masks.brush_stroke_mask (DeepFill v2 brush strokes)",
            **dataclasses.asdict(DEFAULT_BRUSH),
            "ratio_range": [0.0, 1.0],
        }
        for i in range(count):
            add(_freeform(size, _rng(seed, code, i)), bucket=None, border=None)
    elif name == "irregular":
        from deepfill_tf.masks.irregular import DEFAULT_IRREGULAR

        margin = border_margin(size)
        if size - 2 * margin < 8:
            raise ConfigError(f"irregular masks need a size of at least {2 * margin + 8}")
        params = {
            "generator": "deepfill_tf.masks.irregular.irregular_mask (strokes + blobs)",
            "generator_parameters": {
                k: v
                for k, v in dataclasses.asdict(DEFAULT_IRREGULAR).items()
                if k not in ("hole_ratio", "margin")
            },
            "buckets": [bucket_label(b) for b in IRREGULAR_BUCKETS],
            "border_margin": margin,
            "border_definition": f"a hole pixel within {margin} px of the image edge",
            "count_per_bucket_and_border": count,
            "ratio_range": [IRREGULAR_BUCKETS[0][0], IRREGULAR_BUCKETS[-1][1]],
        }
        for b, bucket in enumerate(IRREGULAR_BUCKETS):
            for border in (False, True):
                for i in range(count):
                    key = (seed % 2**32, code, b, int(border), i)
                    add(
                        _irregular(size, seed, key, bucket, border, margin),
                        bucket=bucket_label(bucket),
                        border=border,
                    )
    else:
        params = {
            "generator": "LaMa MixedMaskGenerator (saicinpainting/training/data/masks.py)",
            **lama_parameters(name, size),
            "ratio_range": [0.0, LAMA_MAX_TAMPER_AREA],
        }
        for i in range(count):
            add(_lama(name, size, _rng(seed, code, i)), bucket=None, border=None)
    suite = Suite(name, size, seed, params, entries, SUITE_VERSIONS[name])
    suite.set_sha256 = set_hash(entries)
    return suite


def write_suite(suite: Suite, directory: str) -> str:
    """Write the suite's PNGs and manifest.json (each file atomically, the manifest last)."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise InputError(f"{directory}: cannot create ({e.strerror})") from None
    for entry in suite.entries:
        data = entry.get("png") or _png(entry["mask"])
        write_atomic(os.path.join(directory, entry["file"]), data)
    manifest = suite.manifest()
    for e in manifest["masks"]:
        e.pop("png", None)
    text = json.dumps(manifest, indent=1) + "\n"
    path = os.path.join(directory, MANIFEST)
    write_atomic(path, text)
    suite.directory = directory
    return path


def load_suite(directory: str, size: int | None = None) -> Suite:
    """Read and verify a suite folder: every file's SHA-256, the set hash and the size.

    Raises:
        InputError: no manifest, a missing or edited mask, or masks of another size.
    """
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise InputError(
            f"{directory}: no {MANIFEST}; make a suite with `deepfill-tf masks --suite NAME` "
            "or bucket a folder with `--from-dir`"
        )
    try:
        with open(path) as f:
            manifest = json.load(f)
        entries = manifest["masks"]
        msize = int(manifest["size"][0])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise InputError(f"{path}: not a mask suite manifest ({e})") from None
    if size is not None and msize != size:
        raise InputError(
            f"{directory}: masks are {msize}x{msize} but --size is {size}; "
            "use a suite of that size or change --size"
        )
    for e in entries:
        file = os.path.join(directory, e["file"])
        try:
            with open(file, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            raise InputError(f"{file}: listed in {MANIFEST} but missing") from None
        if digest != e["sha256"]:
            raise InputError(
                f"{file}: SHA-256 differs from {MANIFEST} (edited mask?); regenerate the suite"
            )
    if set_hash(entries) != manifest.get("set_sha256"):
        raise InputError(f"{path}: set_sha256 does not match the listed files; regenerate it")
    return Suite(
        manifest["suite"],
        msize,
        manifest.get("seed"),
        manifest.get("parameters", {}),
        entries,
        manifest.get("version", 1),
        directory,
        manifest["set_sha256"],
    )


def from_dir(source: str, size: int) -> Suite:
    """Bucket a folder of NVIDIA Irregular Mask Dataset files into an ``irregular`` suite.

    Those files mark holes BLACK (0 = hole, white = valid): a pixel is a hole when its first
    channel is < 127.5. Files of another size are resized to ``size`` x ``size`` with
    nearest-neighbour sampling (recorded per mask). Each mask gets its measured hole ratio,
    bucket and border flag (``border_margin(size)``); masks outside (0.01, 0.6] are left out
    and counted. The written PNGs use this package's convention (255 = hole).
    """
    try:
        files = list_images(source)
    except ConfigError as e:
        raise InputError(str(e)) from None
    margin = border_margin(size)
    entries, skipped = [], 0
    for file in files:
        rgb = read_image(file)
        resized_from = None
        if rgb.shape[:2] != (size, size):
            resized_from = [rgb.shape[0], rgb.shape[1]]
            rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.NEAREST))
        hole = (rgb[..., 0] < 127.5).astype(np.float32)
        ratio = float(hole.mean())
        bucket = bucket_of(ratio)
        if bucket is None:
            skipped += 1
            continue
        data = _png(hole)
        with open(file, "rb") as f:
            source_sha = hashlib.sha256(f.read()).hexdigest()
        entries.append(
            {
                "file": os.path.splitext(os.path.basename(file))[0] + ".png",
                "hole_ratio": round(ratio, 6),
                "bucket": bucket,
                "border": touches_border(hole, margin),
                "source": os.path.relpath(file, source),
                "source_sha256": source_sha,
                **({"resized_from": resized_from} if resized_from else {}),
                "sha256": hashlib.sha256(data).hexdigest(),
                "mask": hole,
                "png": data,
            }
        )
    if not entries:
        raise InputError(f"{source}: no mask has a hole ratio in (0.01, 0.6] (0 = hole there)")
    names = [e["file"] for e in entries]
    if len(set(names)) != len(names):
        raise InputError(f"{source}: two masks share a file name stem; rename them")
    params = {
        "generator": "from_dir: NVIDIA Irregular Mask Dataset files (0 = hole), bucketed",
        "source_dir": os.path.abspath(source),
        "buckets": [bucket_label(b) for b in IRREGULAR_BUCKETS],
        "border_margin": margin,
        "border_definition": f"a hole pixel within {margin} px of the image edge",
        "skipped_out_of_range": skipped,
        "ratio_range": [IRREGULAR_BUCKETS[0][0], IRREGULAR_BUCKETS[-1][1]],
    }
    suite = Suite("irregular", size, None, params, entries, SUITE_VERSIONS["irregular"])
    suite.set_sha256 = set_hash(entries)
    return suite
