"""Install deepfill_tf: `pip install -e .[test]`."""

from setuptools import find_packages, setup

setup(
    name="deepfill_tf",
    version="0.1.0",
    description="TensorFlow 2 / Keras 3 reimplementation of GLCIC, Context Encoders, DeepFill "
    "v1/v2, the partial-convolution UNet and SC-FEGAN that runs the original released models.",
    python_requires=">=3.10",
    packages=find_packages(
        include=["deepfill_tf", "deepfill_tf.*", "neuralgym_compat", "neuralgym_compat.*"]
    ),
    # the page of deepfill-tf ui; the custom ops built on first use (deepfill_tf/native)
    package_data={"deepfill_tf.ui": ["static/*"], "deepfill_tf.native": ["*.cc"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "numpy",
        "pillow",
        "absl-py",
        "pyyaml",
        "tensorboard",
        "opencv-python-headless",  # GLCIC --postprocess (fast marching + Poisson blending)
        "flask>=3",
        "waitress>=3",  # deepfill-tf ui: the web page and its REST API
        "scipy",
        "matplotlib",  # deepfill-tf evaluate: SSIM filter, FID sqrtm, report plots
    ],
    extras_require={
        "test": ["pytest", "ruff==0.17.6", "selenium", "scikit-image"],
        "datasets": ["tensorflow-datasets"],
        "onnx": ["tf2onnx", "onnxruntime"],  # deepfill-tf export --format onnx
        "vgg-convert": ["torch"],  # python -m deepfill_tf.convert.torchvision_vgg (one-off)
    },
    entry_points={
        "console_scripts": ["deepfill-tf=deepfill_tf.cli.main:console"],
        # load_config finds translators of other config dialects here; the package itself
        # never imports neuralgym_compat.
        "deepfill_tf.config_translators": ["neuralgym = neuralgym_compat.inpaint_yml:TRANSLATOR"],
    },
)
