"""Install deepfill_tf: `pip install -e .[test]`."""

from setuptools import find_packages, setup

setup(
    name="deepfill_tf",
    version="0.1.0",
    description="TensorFlow 2 / Keras 3 reimplementation of DeepFill v1/v2, partial convolution, "
    "SC-FEGAN and GLCIC that runs the original TF1 checkpoints.",
    python_requires=">=3.10",
    packages=find_packages(include=["deepfill_tf", "deepfill_tf.*", "neuralgym_compat", "neuralgym_compat.*"]),
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "numpy",
        "pillow",
        "absl-py",
        "pyyaml",
        "tensorboard",
    ],
    extras_require={
        "test": ["pytest", "ruff"],
        "datasets": ["tensorflow-datasets"],
        "onnx": ["tf2onnx", "onnxruntime"],  # deepfill-tf export --format onnx
    },
    entry_points={"console_scripts": ["deepfill-tf=deepfill_tf.cli.main:main"]},
)
