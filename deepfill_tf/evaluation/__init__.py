"""``deepfill-tf evaluate``: fixed mask suites, metrics, the evaluation runner and reports.

* ``metrics``: DeepFill's relative l1 / l2 / TV, hole and whole l1, PSNR, SSIM, FID.
* ``suites``: reproducible, checksummed mask suites (box, center, freeform, irregular,
  thin / medium / thick) and NVIDIA irregular-mask folders bucketed by hole ratio.
* ``runner``: pairs images with masks, runs models and baselines, resumable results.
* ``report``: results.json / results.csv / summary.md, plots, contact sheets, comparisons.

Images are uint8 RGB (H, W, 3); masks (H, W) float32 with 1 = hole.
"""
