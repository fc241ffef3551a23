"""Inpainting metrics: DeepFill's relative errors, region l1, PSNR, SSIM and FID.

Every per-image metric takes two uint8 RGB images ``result`` and ``target`` of shape
(H, W, 3) and, where it has a region, the hole mask (H, W) float32 with **1 = hole**. Values
are computed in float64 on pixels scaled to [0, 1] (``x / 255``) unless stated otherwise.

* ``deepfill_l1`` / ``deepfill_l2``: the "mean l1 / l2 loss" of the DeepFill papers (Yu et
  al., CVPR 2018, table 1; ICCV 2019). The author explains them in
  JiahuiYu/generative_inpainting issue #146: "relative L1 error and squared relative L2
  error", i.e. ``sum|x_hat - x| / sum|x|`` and ``sum (x_hat - x)^2 / sum x^2`` over the whole
  image, reported in percent. Range [0, inf), 0 = identical.
* ``deepfill_tv``: the papers' "mean TV loss", in the same relative form: the anisotropic
  total variation of the result (sum of absolute vertical and horizontal neighbour
  differences) divided by ``sum|x_hat|``. The author's formula image in issue #146 is not
  quoted in text anywhere we could read; the relative form is our reading (it gives the
  ~25% that the papers print for every method, natural images included). Not an error:
  it measures the result alone; compare it with the ground truth's value.
* ``l1_hole``: mean absolute error over hole pixels and channels; ``l1_whole``: over all.
* ``psnr_whole`` / ``psnr_hole``: ``10 log10(1 / MSE)`` on [0, 1] (= on 0..255 with peak
  255), MSE over all pixels or over hole pixels; capped at ``PSNR_CAP`` dB when MSE is 0.
* ``ssim``: Wang et al. 2004 on the whole image, per channel then averaged: Gaussian window
  sigma 1.5 truncated at 3.5 sigma (11 x 11), K1 = 0.01, K2 = 0.03, L = 255, population
  (not sample) covariances, mean of the SSIM map after dropping the 5-pixel border where
  the window leaves the image (scikit-image's ``structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``).
* FID: ``frechet_distance`` of Gaussian fits to pool features (Heusel et al. 2017) and
  ``InceptionFeatures``, a Keras InceptionV3 from a local weights file.
"""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np

from deepfill_tf.errors import InputError

__all__ = [
    "METRICS",
    "PSNR_CAP",
    "InceptionFeatures",
    "deepfill_l1",
    "deepfill_l2",
    "deepfill_tv",
    "fid_from_features",
    "frechet_distance",
    "gaussian_stats",
    "image_metrics",
    "l1_hole",
    "l1_whole",
    "psnr",
    "ssim",
]

PSNR_CAP = 100.0  # dB, reported for an exact match (MSE = 0)

# name -> (higher_is_better, unit, one-line definition); the order is the report's column order.
METRICS = {
    "deepfill_l1": (False, "%", "relative l1: sum|y-x| / sum|x|, whole image (DeepFill)"),
    "deepfill_l2": (False, "%", "squared relative l2: sum (y-x)^2 / sum x^2 (DeepFill)"),
    "deepfill_tv": (None, "%", "relative TV of the result: (sum|dy|+|dx|) / sum|y| (DeepFill)"),
    "l1_hole": (False, "", "mean |y-x| over hole pixels, [0,1] scale"),
    "l1_whole": (False, "", "mean |y-x| over all pixels, [0,1] scale"),
    "psnr_whole": (True, "dB", "10 log10(1/MSE), all pixels"),
    "psnr_hole": (True, "dB", "10 log10(1/MSE), hole pixels"),
    "ssim": (True, "", "SSIM, Gaussian 11x11 sigma 1.5, K1 0.01, K2 0.03, whole image"),
}


def _unit(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) / 255.0


def _hole(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    hole = np.asarray(mask) > 0.5
    if hole.shape != image.shape[:2]:
        raise InputError(f"mask is {hole.shape} but the image is {image.shape[:2]}")
    return hole


def deepfill_l1(result: np.ndarray, target: np.ndarray) -> float:
    """Relative l1 error ``sum|y - x| / sum|x|`` (fraction; x100 for the papers' percent)."""
    y, x = _unit(result), _unit(target)
    return float(np.abs(y - x).sum() / max(np.abs(x).sum(), 1e-12))


def deepfill_l2(result: np.ndarray, target: np.ndarray) -> float:
    """Squared relative l2 error ``sum (y - x)^2 / sum x^2`` (fraction)."""
    y, x = _unit(result), _unit(target)
    return float(((y - x) ** 2).sum() / max((x**2).sum(), 1e-12))


def deepfill_tv(result: np.ndarray) -> float:
    """Relative total variation ``(sum|y[i+1,j]-y[i,j]| + sum|y[i,j+1]-y[i,j]|) / sum|y|``."""
    y = _unit(result)
    tv = np.abs(np.diff(y, axis=0)).sum() + np.abs(np.diff(y, axis=1)).sum()
    return float(tv / max(np.abs(y).sum(), 1e-12))


def l1_whole(result: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over all pixels and channels, [0, 1] scale."""
    return float(np.abs(_unit(result) - _unit(target)).mean())


def l1_hole(result: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute error over the hole pixels (mask > 0.5) and channels; NaN if no hole."""
    hole = _hole(mask, target)
    if not hole.any():
        return float("nan")
    return float(np.abs(_unit(result)[hole] - _unit(target)[hole]).mean())


def psnr(result: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB with peak 1 on [0, 1] (255 on bytes); over the hole if ``mask`` is given.

    Capped at ``PSNR_CAP`` when the images agree exactly; NaN for an empty hole.
    """
    diff = _unit(result) - _unit(target)
    if mask is not None:
        hole = _hole(mask, target)
        if not hole.any():
            return float("nan")
        diff = diff[hole]
    mse = float(np.mean(diff**2))
    if mse == 0.0:
        return PSNR_CAP
    return float(min(PSNR_CAP, 10.0 * np.log10(1.0 / mse)))


SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # window radius int(3.5 * 1.5 + 0.5) = 5 -> 11 x 11
SSIM_K1, SSIM_K2 = 0.01, 0.03


def ssim(result: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM of two uint8 (H, W, 3) images (or (H, W)), averaged over channels.

    Gaussian-weighted local statistics (sigma 1.5, 11 x 11, reflect padding), population
    covariances, C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2; the mean is taken over the map
    without its 5-pixel border, as scikit-image does.
    """
    # Loaded on use: a heavy or optional library only this feature needs.
    from scipy.ndimage import gaussian_filter

    y = np.asarray(result, dtype=np.float64)
    x = np.asarray(target, dtype=np.float64)
    if y.ndim == 2:
        y, x = y[..., None], x[..., None]
    c1 = (SSIM_K1 * 255.0) ** 2
    c2 = (SSIM_K2 * 255.0) ** 2
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(y.shape[:2]) <= 2 * pad:
        raise InputError(f"SSIM needs images larger than {2 * pad + 1} pixels a side")

    def blur(a):
        return gaussian_filter(a, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

    values = []
    for c in range(y.shape[-1]):
        a, b = y[..., c], x[..., c]
        mu_a, mu_b = blur(a), blur(b)
        var_a = blur(a * a) - mu_a**2
        var_b = blur(b * b) - mu_b**2
        cov = blur(a * b) - mu_a * mu_b
        num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
        den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
        smap = num / den
        values.append(smap[pad:-pad, pad:-pad].mean())
    return float(np.mean(values))


def image_metrics(result: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """All per-image metrics of ``METRICS`` for one result (uint8 RGB) against its target."""
    return {
        "deepfill_l1": deepfill_l1(result, target),
        "deepfill_l2": deepfill_l2(result, target),
        "deepfill_tv": deepfill_tv(result),
        "l1_hole": l1_hole(result, target, mask),
        "l1_whole": l1_whole(result, target),
        "psnr_whole": psnr(result, target),
        "psnr_hole": psnr(result, target, mask),
        "ssim": ssim(result, target),
    }


# ----------------------------------------------------------------------------------- FID


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), N - 1 normalisation (as FID)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise InputError(f"FID needs at least 2 feature vectors, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance of two Gaussians: ``|mu1-mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2))``.

    Heusel et al. 2017 ("GANs trained by a two time-scale update rule"). When the product is
    singular (fewer samples than dimensions) ``eps`` is added to both diagonals, as the
    reference implementation does; a tiny imaginary part from ``sqrtm`` is dropped.
    """
    # Loaded on use: a heavy or optional library only this feature needs.
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    with warnings.catch_warnings():  # "singular matrix": handled below
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """FID of two feature sets (N1, D) and (N2, D).

    With fewer samples than dimensions (the usual case below 2048 images) the covariances
    are low-rank, and ``tr sqrt(S1 S2)`` is computed exactly as the sum of the singular
    values of ``X1 X2^T / sqrt((N1-1)(N2-1))`` (X = centred features; the non-zero
    eigenvalues of ``S1 S2`` are the squared singular values of that small matrix), which
    is fast and needs no ``eps``. Otherwise ``frechet_distance`` of ``gaussian_stats``.
    """
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    (n1, d), n2 = f1.shape, f2.shape[0]
    if min(n1, n2) < 2:
        raise InputError(f"FID needs at least 2 images per set, got {n1} and {n2}")
    if min(n1, n2) > d:
        return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    x1, x2 = f1 - mu1, f2 - mu2
    trace1, trace2 = (x1**2).sum() / (n1 - 1), (x2**2).sum() / (n2 - 1)
    singular = np.linalg.svd(x1 @ x2.T, compute_uv=False)
    tr_covmean = singular.sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return float(max(diff @ diff + trace1 + trace2 - 2.0 * tr_covmean, 0.0))


class InceptionFeatures:
    """2048-d average-pool features of a Keras InceptionV3 loaded from a local weights file.

    ``weights`` is a file ``keras.applications.InceptionV3(include_top=False, weights=PATH)``
    loads (Keras' ImageNet ``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5``, or
    one written by ``save_weights``). Images (N, H, W, 3) uint8 RGB are resized bilinearly to
    299 x 299 and scaled to [-1, 1] (Keras' ``inception_v3.preprocess_input``). Nothing is
    downloaded. These are NOT the weights of the FID reference network (the TF 2015-12-05
    Inception graph used by TTUR / pytorch-fid), so the FID it gives is not comparable with
    published FIDs: ``label`` says so.

    Raises:
        InputError: the file is missing or does not hold InceptionV3 weights.
    """

    def __init__(self, weights: str):
        weights = os.fspath(weights)
        if not os.path.isfile(weights):
            raise InputError(
                f"--inception-weights {weights}: no such file (FID needs a local Keras "
                "InceptionV3 weights file; nothing is downloaded)"
            )
        # Loaded on use: a heavy or optional library only this feature needs.
        import keras

        try:
            self.model = keras.applications.InceptionV3(
                include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3)
            )
            self.model.load_weights(weights)
        except Exception as e:  # noqa: BLE001 - any load failure is a bad weights file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(
                f"--inception-weights {weights}: not Keras InceptionV3 (include_top=False) "
                f"weights ({first[:160]})"
            ) from None

        with open(weights, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        self.weights, self.weights_sha256 = weights, digest
        self.label = (
            f"Keras InceptionV3 (include_top=False, 2048-d average pool, 299x299 bilinear, "
            f"[-1, 1]) with weights {os.path.basename(weights)} (SHA-256 {digest[:12]}): NOT "
            "the FID reference Inception, not comparable with published FIDs"
        )

    def __call__(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        # Loaded on use: it imports TensorFlow, and this module is imported before TensorFlow is (input checks, --help).
        import tensorflow as tf

        out = []
        for i in range(0, len(images), batch_size):
            x = tf.image.resize(tf.cast(images[i : i + batch_size], tf.float32), (299, 299))
            x = x / 127.5 - 1.0
            out.append(np.asarray(self.model(x, training=False), dtype=np.float64))
        return np.concatenate(out, axis=0) if out else np.zeros((0, 2048))
