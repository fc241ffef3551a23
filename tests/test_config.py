"""deepfill_tf.config: TrainConfig defaults, strict YAML, --set overrides, save/load."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from deepfill_tf.config import (
    CONFIGS_DIR,
    TrainConfig,
    find_config,
    load_config,
    parse_override,
    save_config,
)
from deepfill_tf.errors import ConfigError

SHIPPED = sorted(CONFIGS_DIR.glob("*.yml"))


def write(tmp_path: pathlib.Path, text: str, name: str = "run.yml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(match: str, call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError, match=match) as e:
        call(*args, **kwargs)
    message = str(e.value)
    assert "\n" not in message, message
    return message


# --- defaults = published settings ----------------------------------------------------------


def test_published_defaults_v1():
    c = TrainConfig(model="deepfill_v1")
    assert (c.cnum, c.disc_cnum, c.lr, c.beta1, c.beta2, c.d_steps) == (32, 64, 1e-4, 0.5, 0.9, 5)
    assert (c.gan, c.gan_loss_alpha, c.wgan_gp_lambda, c.gan_with_mask) == (
        "wgan_gp",
        0.001,
        10.0,
        False,
    )
    assert (c.coarse_l1_alpha, c.l1_loss_alpha, c.ae_loss_alpha) == (1.2, 1.2, 1.2)
    assert (c.global_wgan_loss_alpha, c.spatial_discounting_gamma) == (1.0, 0.9)
    assert c.discounted_mask and c.ae_loss and not c.pretrain_coarse_network
    assert (c.train_spe, c.max_iters, c.val_psteps) == (10000, 1_000_000, 1000)
    assert (c.img_shapes, c.height, c.width, c.max_delta_height, c.batch_size) == (
        (256, 256, 3),
        128,
        128,
        32,
        16,
    )


def test_published_defaults_v2():
    c = TrainConfig(model="deepfill_v2")
    assert (c.cnum, c.disc_cnum, c.lr, c.beta1, c.beta2, c.d_steps) == (48, 64, 1e-4, 0.5, 0.999, 1)
    assert (c.gan, c.gan_loss_alpha, c.l1_loss_alpha, c.gan_with_mask) == ("sngan", 1.0, 1.0, True)
    assert c.ae_loss and not c.guided and c.edge_threshold == 0.6
    assert (c.train_spe, c.max_iters, c.val_psteps, c.viz_max_out) == (4000, 10**8, 2000, 10)
    assert (c.static_view_size, c.num_gpus, c.seed) == (30, 1, 2018)
    # model-dependent fields are resolved: no None survives construction
    assert all(getattr(c, f.name) is not None for f in dataclasses.fields(c))


def test_config_is_frozen_and_validates_on_replace():
    c = TrainConfig(model="deepfill_v2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.batch_size = 4  # type: ignore[misc]
    assert dataclasses.replace(c, batch_size=4).batch_size == 4
    one_line_error(r"key 'cnum' must be a positive multiple of 4", dataclasses.replace, c, cnum=6)


# --- shipped configs ------------------------------------------------------------------------


def test_all_shipped_configs_are_there():
    names = {p.stem for p in SHIPPED}
    assert names >= {
        "deepfill_v1_places2",
        "deepfill_v1_celebahq",
        "deepfill_v2_places2",
        "deepfill_v2_celebahq",
        "deepfill_v1_tiny",
        "deepfill_v2_tiny",
        "demo",
    }


def _family_of_config_name(stem: str) -> str:
    """The family a shipped config is named after (``<family>_<dataset|tiny>``)."""
    from deepfill_tf.registry import family_names

    if stem == "demo":
        return "deepfill_v2"
    return max((n for n in family_names() if stem.startswith(n + "_")), key=len)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_config_loads(path):
    config = load_config(path)
    model = _family_of_config_name(path.stem)
    assert config.model == model
    assert config.log_dir.startswith("logs/")
    deepfill = model.startswith("deepfill_")
    if deepfill and path.stem.endswith(("_places2", "_celebahq")):
        # the published settings: only data, crop mode and log folder differ from the defaults
        published = TrainConfig(model=model)
        own = ("train_data", "val_data", "random_crop", "log_dir")
        assert dataclasses.replace(config, **{k: getattr(published, k) for k in own}) == published
        assert config.train_data.endswith("train_shuffled.flist")
        assert config.random_crop is path.stem.endswith("_places2")
    if path.stem.endswith("_tiny"):
        assert config.img_shapes[0] <= 128 and config.img_shapes[1] <= 128
        assert config.batch_size == 2 and config.max_iters <= 10
    if deepfill and path.stem.endswith("_tiny"):
        assert 4 <= config.cnum <= 8 and config.img_shapes == (64, 64, 3)
    if path.stem == "demo":
        assert config.train_data == "examples/train" and 8 <= config.cnum <= 12
        assert config.img_shapes[:2] in ((64, 64), (128, 128)) and config.max_iters <= 30000
        assert config.random_flip and config.random_channel_shuffle  # few photos need them


@pytest.mark.parametrize("name", ["deepfill_v1_tiny", "deepfill_v2_tiny"])
def test_tiny_config_data_folder_is_overridable(name, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    config = load_config(name, [f"train_data={images}", f"log_dir={tmp_path / 'run'}"])
    assert config.train_data == str(images) and config.log_dir == str(tmp_path / "run")
    assert find_config(name) == CONFIGS_DIR / f"{name}.yml"


def test_find_config_unknown_name():
    message = one_line_error(
        r"config file not found: no_such_config", find_config, "no_such_config"
    )
    assert "deepfill_v2_tiny" in message  # lists the shipped configs


# --- strict YAML ----------------------------------------------------------------------------


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "model: deepfill_v2\nbatch_sise: 4\n")
    message = one_line_error(
        r"unknown key 'batch_sise'; did you mean 'batch_size'\?", load_config, path
    )
    assert str(path) in message


@pytest.mark.parametrize(
    "line, match",
    [
        ("batch_size: four", r"key 'batch_size' must be an integer, got str 'four'"),
        ("batch_size: 4.0", r"key 'batch_size' must be an integer, got float"),
        ("batch_size: true", r"key 'batch_size' must be an integer, got bool"),
        ("random_crop: 1", r"key 'random_crop' must be true or false, got int"),
        ("lr: fast", r"key 'lr' must be a number, got str 'fast'"),
        ("log_dir: 12", r"key 'log_dir' must be a string, got int"),
        ("img_shapes: [64, 64]", r"key 'img_shapes' must be a list of 3 integers"),
        ("img_shapes: 64", r"key 'img_shapes' must be a list of 3 integers"),
        ("model: deepfill_v3", r"key 'model' must be one of deepfill_v1, deepfill_v2"),
        ("gan: wgan_gp", r"key 'gan' must be 'sngan' for deepfill_v2"),
        ("img_shapes: [100, 100, 3]", r"H and W positive multiples of 8"),
        ("img_shapes: [64, 64, 1]", r"needs 3 channels"),
        ("cnum: 10", r"key 'cnum' must be a positive multiple of 4 for deepfill_v2"),
        (
            "pretrain_coarse_network: true",
            r"'pretrain_coarse_network' is not a deepfill_v2 key \(deepfill_v1 has it\)",
        ),
        ("val: true", r"key 'val' is true but 'val_data' is empty"),
        ("train_data: 'tfds:'", r"'tfds:' needs a dataset name"),
        ("beta2: 1.0", r"key 'beta2' must be in \[0, 1\)"),
        ("max_delta_height: 300", r"key 'max_delta_height' = 300 shrinks the box to nothing"),
        ("batch_size: 0", r"key 'batch_size' must be >= 1"),
    ],
)
def test_wrong_type_or_value_is_a_one_line_error(tmp_path, line, match):
    if line.startswith("model:"):
        path = write(tmp_path, f"{line}\n")
    else:
        path = write(tmp_path, f"model: deepfill_v2\n{line}\n")
    message = one_line_error(match, load_config, path)
    assert message.startswith(str(path))


def test_v1_rules(tmp_path):
    one_line_error(
        r"key 'guided' is not a deepfill_v1 key \(deepfill_v2 has it\)",
        load_config,
        write(tmp_path, "model: deepfill_v1\nguided: true\n"),
    )
    one_line_error(
        r"multiple of 2 for deepfill_v1",
        load_config,
        write(tmp_path, "model: deepfill_v1\ncnum: 5\n"),
    )
    assert load_config(write(tmp_path, "model: deepfill_v1\ncnum: 6\n")).cnum == 6


def test_missing_model_empty_file_bad_yaml_duplicates(tmp_path):
    one_line_error(r"missing key 'model'", load_config, write(tmp_path, "batch_size: 2\n"))
    one_line_error(r"the config file is empty", load_config, write(tmp_path, "# nothing\n"))
    one_line_error(r"top level must be a mapping", load_config, write(tmp_path, "- a\n- b\n"))
    one_line_error(r"invalid YAML at line 2", load_config, write(tmp_path, "model: [a\nb: c: d\n"))
    one_line_error(
        r"duplicate key 'cnum' \(lines 2 and 3\)",
        load_config,
        write(tmp_path, "model: deepfill_v2\ncnum: 8\ncnum: 12\n"),
    )
    one_line_error(r"config file not found", load_config, tmp_path / "nope.yml")


def test_float_fields_accept_ints_and_exponent_strings(tmp_path):
    # PyYAML reads `1e-4` (no dot) as a string; float fields accept it
    c = load_config(write(tmp_path, "model: deepfill_v2\nlr: 2e-4\ngan_loss_alpha: 2\n"))
    assert c.lr == 2e-4 and isinstance(c.gan_loss_alpha, float) and c.gan_loss_alpha == 2.0


def test_null_means_published_value_of_the_model(tmp_path):
    c = load_config(write(tmp_path, "model: deepfill_v1\ncnum: null\nbeta2: ~\n"))
    assert (c.cnum, c.beta2) == (32, 0.9)


# --- --set overrides ------------------------------------------------------------------------


def test_overrides(tmp_path):
    path = write(tmp_path, "model: deepfill_v2\ncnum: 8\n")
    sizes = ["img_shapes=[64,64,3]", "height=32", "width=32", "max_delta_height=8"]
    c = load_config(path, ["batch_size=4", *sizes, "max_delta_width=8"])
    assert (c.batch_size, c.img_shapes, c.height, c.width, c.cnum) == (4, (64, 64, 3), 32, 32, 8)
    assert (c.max_delta_height, c.max_delta_width) == (8, 8)
    c = load_config(path, ["lr=1e-4", "guided=true", "log_dir=2024-01-01", "model_restore="])
    assert (c.lr, c.guided, c.log_dir, c.model_restore) == (1e-4, True, "2024-01-01", "")
    assert load_config(path, ["train_data=tfds:places365_small:train"]).train_data == (
        "tfds:places365_small:train"
    )
    # the model can be switched before the per-model defaults are resolved
    c = load_config(path, ["model=deepfill_v1", "cnum=null"])
    assert (c.model, c.cnum, c.beta2, c.d_steps, c.gan) == ("deepfill_v1", 32, 0.9, 5, "wgan_gp")


def test_override_errors(tmp_path):
    path = write(tmp_path, "model: deepfill_v2\n")
    one_line_error(r"--set 'batch_size': expected key=value", load_config, path, ["batch_size"])
    one_line_error(
        r"unknown key 'bach_size'; did you mean 'batch_size'", load_config, path, ["bach_size=2"]
    )
    one_line_error(
        r"key 'batch_size' must be an integer, got str", load_config, path, ["batch_size=x"]
    )
    one_line_error(r"invalid value", load_config, path, ["img_shapes=[1,2"])


def test_parse_override():
    assert parse_override("a=[1, 2]") == ("a", [1, 2], "[1, 2]")
    assert parse_override(" b = x=y ") == ("b", "x=y", " x=y ")
    assert parse_override("c=") == ("c", "", "")


# --- save / load ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["deepfill_v1", "deepfill_v2"])
def test_save_load_round_trip(tmp_path, model):
    config = TrainConfig(
        model=model,
        cnum=8,
        img_shapes=(64, 128, 3),
        height=32,
        width=48,
        max_delta_height=8,
        max_delta_width=0,
        lr=3e-5,
        train_data="tfds:celeb_a_hq/256:train",
        val_data="data/val.flist",
        val=True,
        log_dir=str(tmp_path / "run"),
        gan_loss_alpha=0.1 + 0.2,  # a float that needs all 17 digits
    )
    path = save_config(config, tmp_path / "run" / "config.yml")
    assert load_config(path) == config
    assert [p.name for p in path.parent.iterdir()] == ["config.yml"]  # no temp file left
    # overwriting keeps one file and the new content
    smaller = dataclasses.replace(config, batch_size=2)
    save_config(smaller, path)
    assert load_config(path) == smaller
    assert [p.name for p in path.parent.iterdir()] == ["config.yml"]


def test_saved_shipped_configs_round_trip(tmp_path):
    for shipped in SHIPPED:
        config = load_config(shipped)
        assert load_config(save_config(config, tmp_path / shipped.name)) == config


def test_family_defaults_cover_exactly_the_family_dependent_shared_keys():
    # every trainable family gives the shared keys whose published value depends on it
    from deepfill_tf.config.train_config import FAMILY_DEFAULT_KEYS, shared_keys
    from deepfill_tf.registry import families

    for family in families():
        if family.trainable:
            defaults = family.published_defaults()
            assert set(defaults) <= set(FAMILY_DEFAULT_KEYS) <= set(shared_keys())
            assert {"max_iters", "train_spe", "val_psteps", "log_dir"} <= set(defaults)
