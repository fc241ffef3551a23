"""SavedModels that TensorFlow Serving runs as they are: encoded images in, PNG bytes out.

``export_saved_model`` writes TF Serving's layout ``EXPORT_DIR/<version>/`` (``saved_model.pb``,
``variables/``, ``fingerprint.pb``) with two signatures, both running the CLI's own graph
computation ``deepfill_tf.inference.pipeline.inpaint_uint8`` (so they give the pixels
``deepfill-tf inpaint`` gives):

``serving_default``
  inputs  ``image_bytes``: (B,) string, encoded PNG or JPEG images (any mode: RGB, grayscale,
          palette, RGBA (alpha dropped), 16-bit PNG (top 8 bits));
          ``mask_bytes``: (B,) string, encoded PNG or JPEG masks, white = hole (a pixel is a hole
          when its BLUE channel is > 127, what the CLI reads as OpenCV's first channel);
          ``guide_bytes``: (B,) string, guided DeepFill v2 only: edge images, white = edge.
  output  ``output_bytes``: (B,) string, encoded RGB PNGs of the input sizes.
  Each image is decoded, checked, inpainted with its own mask and encoded on its own, so the
  images of one request may have different sizes.

``inpaint_tensors``
  inputs  ``image``: (B, H, W, 3) uint8 RGB; ``mask``: (B, H, W, 1) uint8, > 127 = hole;
          ``guide``: (B, H, W, 3) uint8 RGB edge image (guided DeepFill v2 only).
  output  ``output``: (B, H, W, 3) uint8 RGB.

Nothing in the graph calls back into Python (no PyFunc / EagerPyFunc), so the SavedModel loads
without this package. Bad input fails inside the graph with INVALID_ARGUMENT and a message that
names the input: bytes that are not a PNG/JPEG (or a corrupt one), image and mask (or guide) of
different sizes, an image smaller than ``MIN_SIDE`` x ``MIN_SIDE``, batches of different lengths.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from deepfill_tf.errors import CheckpointError, DeepfillError
from deepfill_tf.inference.hd_strategy import crop_around_hole_graph
from deepfill_tf.inference.loading import load_generator
from deepfill_tf.inference.pipeline import MIN_SIDE, inpaint_uint8
from deepfill_tf.native import NATIVE_OPS
from deepfill_tf.registry import families, get_family

BYTES_SIGNATURE = "serving_default"
TENSORS_SIGNATURE = "inpaint_tensors"
# Ops that call back into the Python interpreter: TF Serving has none.
PYTHON_BOUND_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_HOLE_THRESHOLD = 127  # uint8 > 127 is the CLI's float > 127.5


def _label(name: str, index: tf.Tensor) -> tf.Tensor:
    """``name[index]`` as a string tensor, for error messages."""
    return tf.strings.join([name, "[", tf.strings.as_string(index), "]"])


def decode_image(data: tf.Tensor, name: str = "image_bytes", index=0) -> tf.Tensor:
    """Decode one PNG or JPEG image to RGB, as the CLI's PIL reader does.

    PNG: every colour type and bit depth (16-bit keeps the top 8 bits, alpha is dropped).
    JPEG: libjpeg's accurate integer IDCT with fancy upsampling, PIL's defaults, so the pixels
    equal PIL's when both use libjpeg-turbo (they do in the TF and Pillow wheels).

    Args:
      data: scalar string, the encoded file.
      name, index: how error messages name the input (``image_bytes[3]``).

    Returns:
      (H, W, 3) uint8 RGB.

    Raises (when the graph runs):
      InvalidArgumentError: not a PNG or JPEG file, or a corrupt / truncated one.
    """
    is_png = tf.equal(tf.strings.substr(data, 0, len(_PNG_MAGIC)), _PNG_MAGIC)
    is_jpeg = tf.equal(tf.strings.substr(data, 0, len(_JPEG_MAGIC)), _JPEG_MAGIC)
    known = tf.debugging.Assert(
        tf.logical_or(is_png, is_jpeg),
        [tf.strings.join([_label(name, index), ": not a PNG or JPEG image (undecodable bytes)"])],
        name=f"check_{name}_format",
    )
    with tf.control_dependencies([known]):
        rgb = tf.cond(
            is_jpeg,
            lambda: tf.io.decode_jpeg(
                data, channels=3, dct_method="INTEGER_ACCURATE", name=f"decode_{name}_jpeg"
            ),
            lambda: tf.io.decode_png(data, channels=3, dtype=tf.uint8, name=f"decode_{name}_png"),
        )
    return tf.ensure_shape(rgb, [None, None, 3])


def hole_mask_from_rgb(rgb: tf.Tensor) -> tf.Tensor:
    """(..., H, W, 3) uint8 RGB mask image -> (..., H, W, 1) float32, 1 = hole.

    A hole is a BLUE value > 127 (the CLI reads the first channel of OpenCV's BGR order).
    """
    return tf.cast(rgb[..., 2:3] > _HOLE_THRESHOLD, tf.float32)


def _size_checks(image, others, index) -> list:
    """Asserts: every ``(name, tensor)`` in ``others`` has the image's size; image >= MIN_SIDE."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    checks = []
    for name, other in others:
        oh, ow = tf.shape(other)[0], tf.shape(other)[1]
        checks.append(
            tf.debugging.Assert(
                tf.logical_and(tf.equal(h, oh), tf.equal(w, ow)),
                [
                    tf.strings.format(
                        "image_bytes[{}] is {}x{} but " + name + "[{}] is {}x{} (W x H): they must"
                        " be the same size",
                        (index, w, h, index, ow, oh),
                    )
                ],
                name=f"check_{name}_size",
            )
        )
    checks.append(
        tf.debugging.Assert(
            tf.minimum(h, w) >= MIN_SIDE,
            [
                tf.strings.format(
                    "image_bytes[{}] is {}x{} (W x H); the smallest size supported is "
                    f"{MIN_SIDE}x{MIN_SIDE}",
                    (index, w, h),
                )
            ],
            name="check_image_min_size",
        )
    )
    return checks


def _batch_of_one(x: tf.Tensor) -> tf.Tensor:
    """(H, W, C) -> (1, H, W, C) with a statically UNKNOWN batch size, as in the CLI's traced
    function (``Inpainter``). Traced with a static batch of 1, the generator's kernels round
    differently: a level on a few pixels of a published-width model."""
    return tf.reshape(x, tf.concat([[-1], tf.shape(x)], axis=0))


def _same_length(first_name, first, others):
    n = tf.shape(first)[0]
    return [
        tf.debugging.Assert(
            tf.equal(n, tf.shape(t)[0]),
            [
                tf.strings.format(
                    first_name + " has {} entries but " + name + " has {}", (n, tf.shape(t)[0])
                )
            ],
            name=f"check_{name}_batch",
        )
        for name, t in others
    ]


def plain_variables(model) -> list[tf.Variable]:
    """The ``tf.Variable`` behind each of ``model``'s variables, each once.

    A Keras 3 variable is a wrapper around a ``tf.Variable`` (``.value``). Saving the WRAPPER
    gives a SavedModel with every variable twice: Keras exports the wrapper as a new
    ``tf.Variable`` initialised from the inner one, the SavedModel's saver restores that copy,
    while the traced functions read the inner one. ``tf.saved_model.load`` hides this (it
    restores through the object graph and rebinds the captures), but TF1's session loader
    (``tf.compat.v1.saved_model.loader.load``, ``saved_model_cli run``, TF Serving's C++
    server) runs the saver's restore op and leaves the variables the functions read
    uninitialised. Tracking the inner ``tf.Variable`` s makes the saved, restored and read
    variable the same one.

    Args:
      model: a built Keras model (or anything with ``.variables``: Keras or ``tf`` variables).

    Returns:
      the ``tf.Variable`` s, in ``model.variables`` order.

    Raises:
      DeepfillError: a variable that is neither a ``tf.Variable`` nor wraps one.
    """
    found, seen = [], set()
    for variable in model.variables:
        inner = variable if isinstance(variable, tf.Variable) else getattr(variable, "value", None)
        if not isinstance(inner, tf.Variable):
            raise DeepfillError(
                f"cannot export variable {getattr(variable, 'path', variable)!r}: "
                f"{type(inner).__name__} is not a tf.Variable"
            )
        if id(inner) not in seen:
            seen.add(id(inner))
            found.append(inner)
    return found


class InpaintServingModule(tf.Module):
    """A DeepFill generator with the two serving signatures as ``tf.function`` attributes.

    Args:
      generator: a built DeepFill v1/v2 generator with loaded weights
        (``x1, x2, flow = generator(image_bgr_m11, hole_mask)``); ``generator.guided`` selects
        the guided v2 signatures (an extra ``guide_bytes`` / ``guide`` input).
      original_postprocess: reproduce the original test.py post-processing (``--original-
        postprocess`` of the CLI) instead of the CLI default.
      hd_crop: None (the whole image, the ``original`` strategy) or ``{"trigger": px,
        "margin": px, "limit": px}``: images whose long side exceeds ``trigger`` are inpainted
        in one crop around their holes (``hd_strategy.crop_around_hole_graph``).

    Attributes:
      serve_bytes: ``(image_bytes, mask_bytes[, guide_bytes]) -> {"output_bytes": (B,) string}``.
      inpaint_tensors: ``(image, mask[, guide]) -> {"output": (B, H, W, 3) uint8}``.
      weights: the generator's ``tf.Variable`` s, each once (what the SavedModel stores and its
        saver restores; see ``plain_variables``).
    """

    def __init__(self, generator, *, original_postprocess: bool = False, hd_crop=None):
        super().__init__(name="deepfill_serving")
        self.guided = bool(getattr(generator, "guided", False))
        # Track the variables, not the Keras model: the SavedModel then holds plain variables
        # and the two functions, nothing that needs Keras or this package to load.
        self.weights = plain_variables(generator)

        def inpaint_whole(image, hole_mask, guide=None):
            """(H, W, 3) uint8, (H, W, 1) float32, (H, W, 3) uint8 or None -> (H, W, 3) uint8."""
            out = inpaint_uint8(
                generator,
                _batch_of_one(image),
                _batch_of_one(hole_mask),
                None if guide is None else _batch_of_one(guide),
                original_postprocess=original_postprocess,
            )
            return out[0]

        def inpaint_one(image, hole_mask, guide):
            if hd_crop is None:
                return inpaint_whole(image, hole_mask, guide)
            # The crop strategy in the graph (one crop around the holes, see hd_strategy).
            extras = [] if guide is None else [guide]
            return crop_around_hole_graph(inpaint_whole, image, hole_mask, extras, **hd_crop)

        names = ["image_bytes", "mask_bytes"] + (["guide_bytes"] if self.guided else [])

        def serve_bytes(*encoded):
            batch = encoded[0]
            with tf.control_dependencies(
                _same_length("image_bytes", batch, list(zip(names[1:], encoded[1:], strict=True)))
            ):
                encoded = [tf.identity(t) for t in encoded]
            index = tf.range(tf.shape(batch)[0])

            def one(args):
                i = args[-1]
                image = decode_image(args[0], "image_bytes", i)
                mask_rgb = decode_image(args[1], "mask_bytes", i)
                guide = decode_image(args[2], "guide_bytes", i) if self.guided else None
                others = [("mask_bytes", mask_rgb)] + (
                    [("guide_bytes", guide)] if guide is not None else []
                )
                with tf.control_dependencies(_size_checks(image, others, i)):
                    image = tf.identity(image)
                out = inpaint_one(image, hole_mask_from_rgb(mask_rgb), guide)
                return tf.io.encode_png(out, name="encode_output_png")

            # One image at a time: its own size and mask, the CLI's batch-1 arithmetic, and the
            # memory of one forward pass (contextual attention is quadratic in pixels).
            output = tf.map_fn(
                one,
                (*encoded, index),
                fn_output_signature=tf.TensorSpec([], tf.string),
                parallel_iterations=1,
            )
            return {"output_bytes": output}

        def serve_tensors(image, mask, *guide):
            tensors = [("mask", mask)] + ([("guide", guide[0])] if guide else [])
            with tf.control_dependencies(_same_length("image", image, tensors)):
                image, mask, *guide = [tf.identity(t) for t in (image, mask, *guide)]

            def one(args):
                hole = tf.cast(args[1] > _HOLE_THRESHOLD, tf.float32)
                return inpaint_one(args[0], hole, args[2] if guide else None)

            def run():
                return tf.map_fn(
                    one,
                    (image, mask, *guide),
                    fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
                    parallel_iterations=1,
                )

            # An empty batch cannot be stacked from zero elements of unknown size.
            output = tf.cond(tf.shape(image)[0] > 0, run, lambda: tf.zeros_like(image))
            return {"output": output}

        string_batch = [tf.TensorSpec([None], tf.string, name=n) for n in names]
        rgb = tf.TensorSpec([None, None, None, 3], tf.uint8)
        tensor_specs = [
            tf.TensorSpec(rgb.shape, tf.uint8, name="image"),
            tf.TensorSpec([None, None, None, 1], tf.uint8, name="mask"),
        ] + ([tf.TensorSpec(rgb.shape, tf.uint8, name="guide")] if self.guided else [])
        self.serve_bytes = tf.function(serve_bytes, input_signature=string_batch)
        self.inpaint_tensors = tf.function(serve_tensors, input_signature=tensor_specs)

    def signatures(self) -> dict:
        """``{signature name: concrete function}`` for ``tf.saved_model.save``."""
        return {
            BYTES_SIGNATURE: self.serve_bytes.get_concrete_function(),
            TENSORS_SIGNATURE: self.inpaint_tensors.get_concrete_function(),
        }


def _ops_in(saved_model_dir: str, op_types: frozenset) -> list[str]:
    """``"op_type in function_or_graph"`` for every op of ``op_types`` in a SavedModel (main
    graphs and every library function), sorted."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    found = set()
    for meta_graph in proto.meta_graphs:
        graph = meta_graph.graph_def
        found |= {f"{n.op} in graph" for n in graph.node if n.op in op_types}
        for function in graph.library.function:
            found |= {
                f"{n.op} in {function.signature.name}"
                for n in function.node_def
                if n.op in op_types
            }
    return sorted(found)


def python_bound_ops(saved_model_dir: str) -> list[str]:
    """Ops of a SavedModel that need Python; empty when servable (sorted
    ``"op_type in function_or_graph"`` strings)."""
    return _ops_in(saved_model_dir, PYTHON_BOUND_OPS)


def native_ops(saved_model_dir: str) -> list[str]:
    """This package's custom ops (``deepfill_tf.native``) in a SavedModel: TF Serving has none
    of them. Empty when servable (sorted ``"op_type in function_or_graph"`` strings)."""
    return _ops_in(saved_model_dir, NATIVE_OPS)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def export_saved_model(
    generator,
    export_dir: str,
    *,
    version: int = 1,
    overwrite: bool = False,
    original_postprocess: bool = False,
    hd_crop=None,
) -> str:
    """Write ``generator`` as a TF Serving model version ``export_dir/<version>``.

    The SavedModel is written into a temporary folder beside the target (``.tmp-...``, which TF
    Serving ignores: not a number) and renamed into place only once complete and checked.

    Args:
      generator: a built DeepFill v1/v2 generator with loaded weights.
      export_dir: the model's base folder (TF Serving's ``--model_base_path``); created if needed.
      version: the version folder name, a positive integer.
      overwrite: replace an existing version folder (otherwise it is an error).
      original_postprocess, hd_crop: see ``InpaintServingModule``.

    Returns:
      the version folder's path.

    Raises:
      DeepfillError: bad version, the version exists and ``overwrite`` is False, or the graph
        holds a Python-bound op.
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DeepfillError(f"--version must be a positive integer, got {version!r}")
    export_dir = os.path.abspath(os.fspath(export_dir))
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise DeepfillError(f"{export_dir}: exists and is not a folder")
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise DeepfillError(f"{target} already exists (use --overwrite or another --version)")
    os.makedirs(export_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        module = InpaintServingModule(
            generator, original_postprocess=original_postprocess, hd_crop=hd_crop
        )
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        bad = python_bound_ops(tmp)
        if bad:
            raise DeepfillError(f"graph calls back into Python, not servable: {', '.join(bad)}")
        bad = native_ops(tmp)
        if bad:
            raise DeepfillError(f"graph holds custom ops, not servable: {', '.join(bad)}")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the server may be another user
        if os.path.exists(target):
            old = tempfile.mkdtemp(prefix=f".old-{version}-", dir=export_dir)
            os.rename(target, os.path.join(old, "v"))
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_exportable_generator(checkpoint: str, model: str = "auto"):
    """``load_generator(checkpoint, model)``, refusing models export does not handle.

    Returns:
      (generator, ModelSpec)

    Raises:
      CheckpointError: unreadable checkpoint, another model than ``model``, or a family that
        does not export (``Family.exportable``).
    """
    generator, spec = load_generator(checkpoint, model)
    if not get_family(spec.family).exportable:
        can = ", ".join(f.label for f in families() if f.exportable)
        raise CheckpointError(
            f"the checkpoint holds a {spec.label} generator; export supports {can}"
        )
    return generator, spec


def export_checkpoint(checkpoint: str, export_dir: str, *, model: str = "auto", **kwargs) -> str:
    """Load ``checkpoint`` (``load_exportable_generator``) and export it (``export_saved_model``).

    Raises:
      CheckpointError: unreadable checkpoint, another model than ``model``, or a family that
        does not export (``Family.exportable``).
      DeepfillError: see ``export_saved_model``.
    """
    generator, _ = load_exportable_generator(checkpoint, model)
    return export_saved_model(generator, export_dir, **kwargs)
