"""Rebuild examples/train/ and examples/demo/coffee.png from their sources (licences below).

The sources are sample images bundled in the wheels of scikit-image 0.26.0 (``skimage/data/``),
matplotlib 3.11.2 (``grace_hopper.jpg``), SciPy 1.9.3 (``scipy/misc/face.dat`` and
``ascent.dat``) and scikit-learn 1.9.1 (``sklearn/datasets/images/china.jpg``); their
licences are listed in examples/LICENSE.md. None of these packages is a dependency: unpack the
wheels somewhere and point this script at the folders::

    pip download scikit-image==0.26.0 matplotlib==3.11.2 scipy==1.9.3 scikit-learn==1.9.1 \
        --no-deps -d wheels
    unzip -o wheels/scikit_image-*.whl 'skimage/data/*' -d src
    unzip -o wheels/matplotlib-*.whl 'matplotlib/mpl-data/sample_data/*' -d src
    unzip -o wheels/scipy-*.whl 'scipy/misc/*' -d src
    unzip -o wheels/scikit_learn-*.whl 'sklearn/datasets/images/*' -d src
    python examples/prepare.py --skimage-data src/skimage/data \
        --matplotlib-data src/matplotlib/mpl-data/sample_data \
        --scipy-data src/scipy/misc --sklearn-data src/sklearn/datasets/images

Each training photo is centre-cropped to a square and resized (bicubic) to three sizes,
``<name>_<size>.jpg`` for size in TRAIN_SIZES: with ``random_crop`` at 128x128 the model then
sees every photo whole (128) and as 192- and 256-pixel crops, which is how it learns to fill
at the scale of the held-out 128x128 demo image as well as at close range.
"""

from __future__ import annotations

import argparse
import bz2
import os
import pickle

import numpy as np
from PIL import Image

TRAIN_SIZES = (128, 192, 256)
DEMO_SIZE = 128

# file name in examples/train -> (source folder key, file name there)
TRAIN_SOURCES = {
    "astronaut": ("skimage", "astronaut.png"),
    "brick": ("skimage", "brick.png"),
    "camera": ("skimage", "camera.png"),
    "chelsea": ("skimage", "chelsea.png"),
    "coins": ("skimage", "coins.png"),
    "grass": ("skimage", "grass.png"),
    "gravel": ("skimage", "gravel.png"),
    "hubble": ("skimage", "hubble_deep_field.jpg"),
    "retina": ("skimage", "retina.jpg"),
    "rocket": ("skimage", "rocket.jpg"),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
    "raccoon": ("scipy", "face.dat"),
    "ascent": ("scipy", "ascent.dat"),
    "summer_palace": ("sklearn", "china.jpg"),
}
DEMO_SOURCE = ("skimage", "coffee.png")


def open_source(path: str) -> Image.Image:
    """A source image; SciPy's two ``.dat`` files are raw arrays, not image files."""
    name = os.path.basename(path)
    if name == "face.dat":  # bz2-compressed raw uint8, 768 x 1024 x 3 RGB
        with open(path, "rb") as f:
            raw = np.frombuffer(bz2.decompress(f.read()), np.uint8)
        return Image.fromarray(raw.reshape(768, 1024, 3))
    if name == "ascent.dat":  # a pickled 512 x 512 grey-level array (SciPy's own file)
        with open(path, "rb") as f:
            return Image.fromarray(np.asarray(pickle.load(f)).astype(np.uint8))
    return Image.open(path)


def square(image: Image.Image) -> Image.Image:
    """The largest centred square of an image, as RGB."""
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skimage-data", required=True)
    parser.add_argument("--matplotlib-data", required=True)
    parser.add_argument("--scipy-data", required=True)
    parser.add_argument("--sklearn-data", required=True)
    parser.add_argument("--output", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    folders = {
        "skimage": args.skimage_data,
        "matplotlib": args.matplotlib_data,
        "scipy": args.scipy_data,
        "sklearn": args.sklearn_data,
    }

    train_dir = os.path.join(args.output, "train")
    os.makedirs(train_dir, exist_ok=True)
    for name, (key, file) in sorted(TRAIN_SOURCES.items()):
        photo = square(open_source(os.path.join(folders[key], file)))
        for size in TRAIN_SIZES:
            out = os.path.join(train_dir, f"{name}_{size}.jpg")
            photo.resize((size, size), Image.BICUBIC).save(out, quality=92)
            print(out)
    key, file = DEMO_SOURCE
    demo = square(open_source(os.path.join(folders[key], file)))
    out = os.path.join(args.output, "demo", "coffee.png")
    demo.resize((DEMO_SIZE, DEMO_SIZE), Image.BICUBIC).save(out)
    print(out)


if __name__ == "__main__":
    main()
