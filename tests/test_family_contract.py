"""The family contract: a throw-away family defined in this file alone trains (with phases and
a resume), inpaints and exports through the public entry points; every registered family
passes the shared family checks; no package module switches on a model name; the layering
holds."""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deepfill_tf.cli.main import main
from deepfill_tf.config import Section, load_config
from deepfill_tf.registry import Family, ModelSpec, families, get_family, register, unregister
from deepfill_tf.testing import run_family_test
from deepfill_tf.training.task import Objective, Phase, Task

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "deepfill_tf"


# --- a throw-away family: a learned 3x3 conv on the masked image -----------------------------


@keras.saving.register_keras_serializable(package="test_family_contract")
class ToyGenerator(keras.Model):
    """(B, H, W, 3) BGR [-1, 1] image + (B|1, H, W, 1) hole mask -> (B, H, W, 3) prediction."""

    family = "toy"

    def __init__(self, width: int = 3, **kwargs):
        kwargs.setdefault("name", "toy_net")
        super().__init__(**kwargs)
        self.width = width
        self.conv = keras.layers.Conv2D(3, width, padding="same", name="conv")

    def call(self, image, hole_mask):
        mask = tf.broadcast_to(hole_mask, tf.concat([tf.shape(image)[:3], [1]], 0))
        return tf.tanh(self.conv(tf.concat([image * (1.0 - mask), mask], axis=-1)))

    def build_for(self, size: int = 16):
        self(tf.zeros([1, size, size, 3]), tf.zeros([1, size, size, 1]))
        return self

    def get_config(self):
        return {**super().get_config(), "width": self.width}


@dataclasses.dataclass(frozen=True)
class ToySection(Section):
    width: int = 3
    hole: int = 8


class ToyTask(Task):
    def __init__(self, config):
        super().__init__(config)
        self.generator = ToyGenerator(config.width).build_for()
        self.networks = {"generator": self.generator}
        self.entered: list[str] = []

    def objectives(self):
        return {"reconstruction": Objective(self.loss, lambda: self.generator.trainable_variables)}

    def phases(self):
        # two phases so that the test sees a phase change and a resume inside a phase
        return [
            Phase("warm-up", (("reconstruction", 1),), end=2, learning_rate=1e-2),
            Phase("main", (("reconstruction", 1),)),
        ]

    def begin_phase(self, phase):
        self.entered.append(phase.name)

    def sample_random(self, seed):
        h, w = self.config.img_shapes[:2]
        top = tf.random.stateless_uniform([], seed, 0, h - self.config.hole, tf.int32)
        mask = tf.pad(tf.ones([self.config.hole, w]), [[top, h - self.config.hole - top], [0, 0]])
        return {"mask": mask[None, :, :, None]}

    def loss(self, images, random):
        out = self.generator(images, random["mask"])
        loss = tf.reduce_mean(tf.abs(out - images))
        return loss, {"l1": loss}


class Toy(Family):
    name = "toy"
    label = "Toy"
    summary = "a learned 3x3 convolution (test family)"
    size_multiple = 4
    min_side = 8
    trainable = True
    exportable = True
    config_section = ToySection
    architecture_keys = ("width",)

    def detect(self, variables):
        kernel = variables.get("toy_net/conv/kernel")
        return None if kernel is None else ModelSpec(self.name, {"width": int(kernel.shape[0])})

    def tiny_spec(self):
        return ModelSpec(self.name, {"width": 3})

    def spec_from_config(self, config):
        return ModelSpec(self.name, {"width": config.width})

    def build_generator(self, spec):
        return ToyGenerator(spec.width).build_for()

    def predict(self, generator, image, hole_mask, inputs):
        x = image / 127.5 - 1.0
        return (generator(x, hole_mask) + 1.0) * 127.5

    def make_task(self, config):
        return ToyTask(config)

    def published_defaults(self):
        return {"max_iters": 3, "train_spe": 1, "val_psteps": 1, "log_dir": "logs/toy"}


@pytest.fixture
def toy():
    family = register(Toy())
    yield family
    unregister("toy")


def _photos(folder: pathlib.Path, n: int = 3, size: int = 32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / f"{i}.png"
        )


def test_a_family_defined_in_a_test_file_trains_resumes_inpaints_and_exports(toy, tmp_path, capsys):
    _photos(tmp_path / "photos")
    run = tmp_path / "run"
    config = tmp_path / "toy.yml"
    config.write_text(
        f"model: toy\ntrain_data: {tmp_path / 'photos'}\nimg_shapes: [32, 32, 3]\n"
        f"batch_size: 2\nlog_dir: {run}\ntoy:\n  width: 3\n  hole: 8\n"
    )
    assert load_config(config).width == 3

    assert main(["train", "--config", str(config), "--max-iters", "1"]) == 0
    out = capsys.readouterr().out
    assert "phase 'warm-up' from step 0" in out and "finished at step 1" in out
    assert main(["train", "--config", str(config), "--max-iters", "3"]) == 0
    out = capsys.readouterr().out
    assert "resumed from step 1" in out
    assert "phase 'warm-up' from step 1" in out  # the resume lands in the right phase
    assert "phase 'main' from step 2" in out and "finished at step 3" in out
    assert (run / "ckpt-3.index").is_file()
    saved = load_config(run / "config.yml")
    assert saved.model == "toy" and saved.section == ToySection(width=3, hole=8)

    image = np.random.default_rng(1).integers(0, 256, (30, 22, 3), dtype=np.uint8)
    mask = np.zeros((30, 22), np.uint8)
    mask[8:16, 4:12] = 255
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert (
        main(
            [
                "inpaint",
                "--checkpoint",
                str(run),
                "--model",
                "toy",
                "--image",
                str(tmp_path / "in.png"),
                "--mask",
                str(tmp_path / "mask.png"),
                "--output",
                str(tmp_path / "out.png"),
            ]
        )
        == 0
    )
    result = np.asarray(Image.open(tmp_path / "out.png"))
    assert result.shape == image.shape  # 30x22 is padded to multiples of 4 and cropped back
    hole = mask > 127
    assert np.array_equal(result[~hole], image[~hole])
    assert not np.array_equal(result[hole], image[hole])

    assert main(["export", "--checkpoint", str(run), "--output", str(tmp_path / "served")]) == 0
    served = tf.saved_model.load(str(tmp_path / "served" / "1")).signatures["inpaint_tensors"]
    got = served(image=tf.constant(image[None]), mask=tf.constant(mask[None, :, :, None]))
    np.testing.assert_array_equal(next(iter(got.values())).numpy()[0], result)


def test_unknown_family_and_foreign_keys_are_one_line_errors(toy, tmp_path):
    from deepfill_tf.errors import ConfigError

    with pytest.raises(ConfigError, match=r"key 'model' must be one of .*toy.*, got 'nope'"):
        config = tmp_path / "a.yml"
        config.write_text("model: nope\n")
        load_config(config)
    config = tmp_path / "b.yml"
    config.write_text("model: toy\ncnum: 8\n")
    with pytest.raises(ConfigError, match=r"key 'cnum' is not a toy key \(deepfill_v1, "):
        load_config(config)


# --- every registered family passes the shared checks ----------------------------------------


@pytest.mark.parametrize("name", [f.name for f in families()] + ["toy"])
def test_every_family_passes_the_family_checks(toy, name, tmp_path):
    """Built-in families train one step on their shipped tiny config (``<name>_tiny``)."""
    family = get_family(name)
    config = None
    if family.trainable:
        shipped = "toy.yml" if name == "toy" else f"{name}_tiny"
        if name == "toy":
            (tmp_path / shipped).write_text("model: toy\nimg_shapes: [32, 32, 3]\nbatch_size: 2\n")
            shipped = tmp_path / shipped
        config = load_config(shipped, [f"log_dir={tmp_path / 'run'}"])
    run_family_test(family, train_config=config)


# --- no model-name switches outside a family's home; layering --------------------------------


def _string_constants(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    }


@pytest.mark.parametrize(
    "folder",
    ["config", "training", "inference", "export", "cli", "convert", "data", "ui", "evaluation"],
)
def test_no_model_name_literals_outside_the_family_homes(folder):
    names = {name for f in families() if f.name != "toy" for name in (f.name, *f.aliases)}
    offenders = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        hits = sorted(names & _string_constants(path))
        if hits:
            offenders.append(f"{path.relative_to(PACKAGE)}: {hits}")
    assert not offenders, offenders


def _imports(path: pathlib.Path) -> set[str]:
    """Modules imported at module level or in functions (absolute names)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _package_graph() -> dict[str, set[str]]:
    """``deepfill_tf.<pkg>`` -> the ``deepfill_tf.<pkg>`` it imports (cli excluded)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        source = ".".join(parts[:2])
        for target in _imports(path):
            if target.startswith("deepfill_tf."):
                target = ".".join(target.split(".")[:2])
                if target != source:
                    graph.setdefault(source, set()).add(target)
    return graph


def test_layering():
    graph = _package_graph()
    assert not any(
        t.startswith("neuralgym_compat") for path in PACKAGE.rglob("*.py") for t in _imports(path)
    ), "a deepfill_tf module imports neuralgym_compat"
    assert "deepfill_tf.training" not in graph.get("deepfill_tf.inference", set())
    assert "deepfill_tf.training" not in graph.get("deepfill_tf.export", set())

    def reaches(a, b, seen=()):
        return any(
            n == b or (n not in seen and reaches(n, b, (*seen, n))) for n in graph.get(a, ())
        )

    packages = [p for p in graph if p != "deepfill_tf.cli"]
    circles = [
        (a, b) for a in packages for b in graph[a] if b != "deepfill_tf.cli" and reaches(b, a)
    ]
    assert not circles, f"import circles between packages: {circles}"
