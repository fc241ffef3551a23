"""Metrics of deepfill_tf.evaluation: parity with scikit-image and a NumPy/SciPy FID."""

from __future__ import annotations

import numpy as np
import pytest

from deepfill_tf.errors import InputError
from deepfill_tf.evaluation import metrics as M

skimage_metrics = pytest.importorskip("skimage.metrics")


def _pair(seed=0, shape=(64, 72, 3), noise=40):
    rs = np.random.RandomState(seed)
    target = rs.randint(0, 256, shape).astype(np.uint8)
    result = np.clip(target.astype(int) + rs.randint(-noise, noise + 1, shape), 0, 255)
    mask = np.zeros(shape[:2], np.float32)
    mask[10:40, 20:50] = 1.0
    return result.astype(np.uint8), target, mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_scikit_image(seed):
    result, target, mask = _pair(seed)
    ref = skimage_metrics.peak_signal_noise_ratio(target, result, data_range=255)
    assert M.psnr(result, target) == pytest.approx(ref, abs=1e-10)
    hole = mask > 0.5
    ref_hole = skimage_metrics.peak_signal_noise_ratio(target[hole], result[hole], data_range=255)
    assert M.psnr(result, target, mask) == pytest.approx(ref_hole, abs=1e-10)


@pytest.mark.parametrize("seed,shape", [(0, (64, 72, 3)), (3, (33, 40, 3)), (4, (48, 48))])
def test_ssim_matches_scikit_image(seed, shape):
    result, target, _ = _pair(seed, shape)
    ref = skimage_metrics.structural_similarity(
        target,
        result,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=-1 if len(shape) == 3 else None,
    )
    assert M.ssim(result, target) == pytest.approx(ref, abs=1e-10)


def test_identical_images():
    _, target, mask = _pair()
    values = M.image_metrics(target, target, mask)
    assert values["psnr_whole"] == M.PSNR_CAP and values["psnr_hole"] == M.PSNR_CAP
    assert values["ssim"] == pytest.approx(1.0)
    for name in ("deepfill_l1", "deepfill_l2", "l1_hole", "l1_whole"):
        assert values[name] == 0.0


def test_deepfill_relative_errors_by_hand():
    target = np.full((4, 4, 3), 100, np.uint8)
    result = target.copy()
    result[0, 0] = 150  # |diff| 50 on 3 channels of one pixel
    # relative l1 = sum|y-x| / sum|x| = 150 / (48 * 100); squared relative l2 = 3*2500 / (48*1e4)
    assert M.deepfill_l1(result, target) == pytest.approx(150 / 4800)
    assert M.deepfill_l2(result, target) == pytest.approx(7500 / 480000)
    # TV of the result: the odd pixel differs from 1 right and 1 down neighbour by 50 each.
    assert M.deepfill_tv(result) == pytest.approx(2 * 3 * 50 / (45 * 100 + 3 * 150))


def test_region_l1():
    target = np.zeros((8, 8, 3), np.uint8)
    result = target.copy()
    result[:2] = 255
    mask = np.zeros((8, 8), np.float32)
    mask[:4] = 1
    assert M.l1_hole(result, target, mask) == pytest.approx(0.5)
    assert M.l1_whole(result, target) == pytest.approx(0.25)
    assert np.isnan(M.l1_hole(result, target, np.zeros((8, 8))))
    with pytest.raises(InputError):
        M.l1_hole(result, target, np.zeros((4, 4)))


def _fid_numpy(f1, f2):
    """FID computed independently: tr sqrt(S1 S2) as the sum of sqrt of S1 S2's eigenvalues."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    # S1 S2 is similar to S1^1/2 S2 S1^1/2 (symmetric PSD): real non-negative eigenvalues.
    # S1^1/2 from the symmetric eigendecomposition (exact also for singular S1).
    lam, vec = np.linalg.eigh(s1)
    r = (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T
    eig = np.linalg.eigvalsh(r @ s2 @ r)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def test_frechet_distance_matches_numpy_scipy():
    rs = np.random.RandomState(0)
    f1 = rs.normal(size=(200, 16))
    f2 = rs.normal(loc=0.3, scale=1.2, size=(180, 16)) @ rs.normal(size=(16, 16)) * 0.3
    mu1, s1 = M.gaussian_stats(f1)
    mu2, s2 = M.gaussian_stats(f2)
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_fid_numpy(f1, f2), rel=1e-7)


def test_frechet_distance_identical_sets_is_zero():
    f = np.random.RandomState(1).normal(size=(100, 32))
    mu, s = M.gaussian_stats(f)
    assert M.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_fewer_samples_than_dims():
    f = np.random.RandomState(2).normal(size=(10, 64))
    g = f + 0.5
    mu1, s1 = M.gaussian_stats(f)
    mu2, s2 = M.gaussian_stats(g)
    # Same covariance, means 0.5 apart in 64 dims: distance 64 * 0.25.
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(16.0, rel=1e-4)


def test_inception_weights_missing(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        M.InceptionFeatures(str(tmp_path / "nope.h5"))
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not weights")
    with pytest.raises(InputError, match="not Keras InceptionV3"):
        M.InceptionFeatures(str(bad))


@pytest.mark.parametrize("n1,n2,d", [(10, 12, 32), (40, 30, 8), (5, 6, 512)])
def test_fid_from_features_matches_scipy(n1, n2, d):
    rs = np.random.RandomState(n1 + d)
    f1 = rs.normal(size=(n1, d))
    f2 = rs.normal(loc=0.2, size=(n2, d)) * 1.5
    expected = _fid_numpy(f1, f2)
    assert M.fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-6)
    assert M.fid_from_features(f1, f1) == pytest.approx(0.0, abs=1e-8)
