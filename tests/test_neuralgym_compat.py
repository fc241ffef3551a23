"""neuralgym_compat: the original inpaint.yml (v1 UPPER-case, v2 lower-case) and .flist files."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from deepfill_tf.config import TrainConfig, load_config, save_config
from deepfill_tf.errors import ConfigError
from neuralgym_compat import (
    TRANSLATOR,
    detect_dialect,
    edge_path,
    read_flist,
    translate_inpaint_dict,
)
from neuralgym_compat.inpaint_yml import V1_KEYS, V2_KEYS

# Same keys, values and YAML forms (flow lists over several lines, trailing commas, `1.`,
# quoted strings) as inpaint.yml on branch v1.0.0 of generative_inpainting.
V1_YML = """\
# parameters
DATASET: 'celebahq'  # which DATA_FLIST entry to train on
RANDOM_CROP: False
VAL: False
LOG_DIR: full_model_celeba_hq_256
MODEL_RESTORE: ''  # run folder name under model_logs/

GAN: 'wgan_gp'  # 'dcgan', 'lsgan', 'wgan_gp', 'one_wgan_gp'
PRETRAIN_COARSE_NETWORK: False
GAN_LOSS_ALPHA: 0.001
WGAN_GP_LAMBDA: 10
COARSE_L1_ALPHA: 1.2
L1_LOSS_ALPHA: 1.2
AE_LOSS_ALPHA: 1.2
GAN_WITH_MASK: False
DISCOUNTED_MASK: True
RANDOM_SEED: False
PADDING: 'SAME'

# training
NUM_GPUS: 1
GPU_ID: -1  # -1: any free GPU, or a list such as [0,1,3]
TRAIN_SPE: 10000
MAX_ITERS: 1000000
VIZ_MAX_OUT: 10
GRADS_SUMMARY: False
GRADIENT_CLIP: False
GRADIENT_CLIP_VALUE: 0.1
VAL_PSTEPS: 1000

# data
DATA_FLIST:
  celebahq: [
    'data/celeba_hq/train_shuffled.flist',
    'data/celeba_hq/validation_static_view.flist'
  ]
  celeba: [
    'data/celeba/train_shuffled.flist',
    'data/celeba/validation_static_view.flist'
  ]
  places2: [
    'data/places2/train_shuffled.flist',
    'data/places2/validation_static_view.flist'
  ]
  imagenet: [
    'data/imagenet/train_shuffled.flist',
    'data/imagenet/validation_static_view.flist',
  ]

STATIC_VIEW_SIZE: 30
IMG_SHAPES: [256, 256, 3]
HEIGHT: 128
WIDTH: 128
MAX_DELTA_HEIGHT: 32
MAX_DELTA_WIDTH: 32
BATCH_SIZE: 16
VERTICAL_MARGIN: 0
HORIZONTAL_MARGIN: 0

# loss
AE_LOSS: True
L1_LOSS: True
GLOBAL_DCGAN_LOSS_ALPHA: 1.
GLOBAL_WGAN_LOSS_ALPHA: 1.

# loss legacy
LOAD_VGG_MODEL: False
VGG_MODEL_FILE: data/model_zoo/vgg16.npz
FEATURE_LOSS: False
GRAMS_LOSS: False
TV_LOSS: False
TV_LOSS_ALPHA: 0.
FEATURE_LOSS_ALPHA: 0.01
GRAMS_LOSS_ALPHA: 50
SPATIAL_DISCOUNTING_GAMMA: 0.9
"""

# Same keys, values and YAML forms as inpaint.yml on branch v2.0.0.
V2_YML = """\
# =========================== Basic Settings ===========================
# machine info
num_gpus_per_job: 1  # GPUs per job
num_cpus_per_job: 4  # CPUs per job
num_hosts_per_job: 1
memory_per_job: 32  # GB per job
gpu_type: 'nvidia-tesla-p100'

# parameters
name: places2_gated_conv_v100  # any name
model_restore: ''  # logs/places2_gated_conv
dataset: 'celebahq'  # which data_flist entry to train on
random_crop: False  # false: resize images to img_shapes; true: crop them
val: False  # true: show validation images in tensorboard
log_dir: logs/full_model_celeba_hq_256

gan: 'sngan'
gan_loss_alpha: 1
gan_with_mask: True
discounted_mask: True
random_seed: False
padding: 'SAME'

# training
train_spe: 4000
max_iters: 100000000
viz_max_out: 10
val_psteps: 2000

# data
data_flist:
  celebahq: [
    'data/celeba_hq/train_shuffled.flist',
    'data/celeba_hq/validation_static_view.flist'
  ]
  celeba: [
    'data/celeba/train_shuffled.flist',
    'data/celeba/validation_static_view.flist'
  ]
  places2: [
    'data/places2/train_shuffled.flist',
    'data/places2/validation_static_view.flist'
  ]
  imagenet: [
    'data/imagenet/train_shuffled.flist',
    'data/imagenet/validation_static_view.flist',
  ]

static_view_size: 30
img_shapes: [256, 256, 3]
height: 128
width: 128
max_delta_height: 32
max_delta_width: 32
batch_size: 16
vertical_margin: 0
horizontal_margin: 0

# loss
ae_loss: True
l1_loss: True
l1_loss_alpha: 1.

# to tune
guided: False
edge_threshold: 0.6
"""


@pytest.fixture
def v1_yml(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "v1" / "inpaint.yml"
    path.parent.mkdir()
    path.write_text(V1_YML)
    return path


@pytest.fixture
def v2_yml(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "v2" / "inpaint.yml"
    path.parent.mkdir()
    path.write_text(V2_YML)
    return path


def edited(path: pathlib.Path, old: str, new: str) -> pathlib.Path:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return path


# --- the key tables cover exactly the original files ---------------------------------------


def test_key_tables_cover_every_original_key():
    v1_keys = set(yaml.safe_load(V1_YML))
    v2_keys = set(yaml.safe_load(V2_YML))
    assert len(v1_keys) == 48 and len(v2_keys) == 36
    assert v1_keys <= V1_KEYS
    assert v2_keys <= V2_KEYS
    # the only extra keys we accept are the legacy ones of pre-release v1 revisions
    assert V1_KEYS - v1_keys == {"PERCEPTUAL_LOSS", "PERCEPTUAL_LOSS_ALPHA"}
    assert V2_KEYS == v2_keys


def test_detect_dialect():
    assert detect_dialect(yaml.safe_load(V1_YML)) == "v1"
    assert detect_dialect(yaml.safe_load(V2_YML)) == "v2"
    assert detect_dialect({"model": "deepfill_v2", "batch_size": 2}) is None
    assert detect_dialect({"GAN": "wgan_gp"}) == "v1"
    assert detect_dialect({"num_gpus_per_job": 1}) == "v2"
    # only keys our format shares with v2 and no `model`: ours (then "missing key 'model'")
    assert detect_dialect({"gan": "sngan", "max_iters": 3}) is None


# --- v1 -------------------------------------------------------------------------------------


def test_v1_original_loads_with_published_values(v1_yml):
    for config in (load_config(v1_yml), _translate(v1_yml)):
        assert config.model == "deepfill_v1"
        expected = TrainConfig(
            model="deepfill_v1",
            train_data="data/celeba_hq/train_shuffled.flist",
            val_data="data/celeba_hq/validation_static_view.flist",
            # the original's model_logs/<date>_<host>_<DATASET>_<MASKED|NORMAL>_<GAN>_<LOG_DIR>
            # without the date and host
            log_dir="model_logs/celebahq_NORMAL_wgan_gp_full_model_celeba_hq_256",
        )
        assert config == expected
        # the published v1 values, spelled out
        assert (config.cnum, config.disc_cnum, config.beta2, config.d_steps) == (32, 64, 0.9, 5)
        assert (config.gan, config.gan_loss_alpha, config.wgan_gp_lambda) == ("wgan_gp", 0.001, 10)
        assert (config.coarse_l1_alpha, config.l1_loss_alpha, config.ae_loss_alpha) == (1.2,) * 3
        assert config.global_wgan_loss_alpha == 1.0 and config.spatial_discounting_gamma == 0.9
        assert config.gan_with_mask is False and config.discounted_mask is True
        assert config.pretrain_coarse_network is False and config.ae_loss is True
        assert config.img_shapes == (256, 256, 3) and config.batch_size == 16
        assert (config.height, config.width, config.max_delta_height) == (128, 128, 32)
        assert (config.train_spe, config.max_iters, config.val_psteps) == (10000, 1000000, 1000)
        assert (config.viz_max_out, config.static_view_size, config.num_gpus) == (10, 30, 1)
        assert config.model_restore == "" and config.val is False and config.random_crop is False


def test_v1_overrides_original_and_our_names(v1_yml):
    assert load_config(v1_yml, ["MAX_ITERS=10"]).max_iters == 10
    assert load_config(v1_yml, ["max_iters=10"]).max_iters == 10
    # ours are applied after the original's
    assert load_config(v1_yml, ["MAX_ITERS=10", "max_iters=7"]).max_iters == 7
    c = load_config(v1_yml, ["DATASET=places2", "VAL=True", "cnum=8", "IMG_SHAPES=[512,512,3]"])
    assert c.train_data == "data/places2/train_shuffled.flist"
    assert c.val_data == "data/places2/validation_static_view.flist"
    assert c.log_dir.startswith("model_logs/places2_NORMAL_wgan_gp_")
    assert (c.val, c.cnum, c.img_shapes) == (True, 8, (512, 512, 3))
    with pytest.raises(ConfigError, match=r"the mask box \(key 'HEIGHT' = 128, key 'VERT"):
        load_config(v1_yml, ["IMG_SHAPES=[64,64,3]"])
    c = load_config(v1_yml, ["DATA_FLIST.mine=[a.flist, b.flist]", "DATASET=mine"])
    assert (c.train_data, c.val_data) == ("a.flist", "b.flist")
    c = load_config(v1_yml, ["MODEL_RESTORE=20180115_run", "train_data=imgs/"])
    assert c.model_restore == "model_logs/20180115_run" and c.train_data == "imgs/"
    with pytest.raises(ConfigError, match=r"unknown key 'dataset'; this file uses 'DATASET'"):
        load_config(v1_yml, ["dataset=places2"])
    with pytest.raises(ConfigError, match=r"the model is fixed by the config file"):
        load_config(v1_yml, ["model=deepfill_v2"])
    with pytest.raises(ConfigError, match=r"unknown key 'max_iter'; did you mean 'max_iters'"):
        load_config(v1_yml, ["max_iter=3"])


def test_v1_ignored_keys_accepted_unknown_rejected(v1_yml):
    base = load_config(v1_yml)
    edited(v1_yml, "GPU_ID: -1", "GPU_ID: [0, 1, 3]")
    edited(v1_yml, "TV_LOSS_ALPHA: 0.", "TV_LOSS_ALPHA: 5.")
    edited(v1_yml, "L1_LOSS: True", "L1_LOSS: True\nPERCEPTUAL_LOSS: True")
    assert load_config(v1_yml) == base
    edited(v1_yml, "GRADS_SUMMARY: False", "GRADS_SUMMARY: False\nMASK_TYPE: free_form")
    with pytest.raises(ConfigError) as e:
        load_config(v1_yml)
    message = str(e.value)
    assert "unknown key 'MASK_TYPE'" in message and str(v1_yml) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("GAN: 'wgan_gp'", "GAN: 'dcgan'", r"key 'GAN' must be 'wgan_gp' for deepfill_v1"),
        ("PADDING: 'SAME'", "PADDING: 'SYMMETRIC'", r"key 'PADDING' must be 'SAME'"),
        ("GRADIENT_CLIP: False", "GRADIENT_CLIP: True", r"key 'GRADIENT_CLIP' must be False"),
        ("BATCH_SIZE: 16", "BATCH_SIZE: '16'", r"key 'BATCH_SIZE' must be an integer, got str"),
        ("IMG_SHAPES: [256, 256, 3]", "IMG_SHAPES: [28, 28, 1]", r"key 'IMG_SHAPES' needs"),
        ("DATASET: 'celebahq'", "DATASET: 'dtd'", r"dataset 'dtd' is not in DATA_FLIST \(it has: "),
        ("LOG_DIR: full_model_celeba_hq_256", "LOG_DIR: 7", r"key 'LOG_DIR' must be a string"),
        ("VAL: False", "VAL: True\nVAL: False", r"duplicate key 'VAL' \(lines 4 and 5\)"),
    ],
)
def test_v1_bad_values(v1_yml, old, new, match):
    edited(v1_yml, old, new)
    with pytest.raises(ConfigError, match=match) as e:
        load_config(v1_yml)
    assert str(v1_yml) in str(e.value) and "\n" not in str(e.value)


def test_v1_pretrain_coarse_network(v1_yml):
    edited(v1_yml, "PRETRAIN_COARSE_NETWORK: False", "PRETRAIN_COARSE_NETWORK: True")
    assert load_config(v1_yml).pretrain_coarse_network is True


# --- v2 -------------------------------------------------------------------------------------


def test_v2_original_loads_with_published_values(v2_yml):
    for config in (load_config(v2_yml), _translate(v2_yml)):
        expected = TrainConfig(
            model="deepfill_v2",
            train_data="data/celeba_hq/train_shuffled.flist",
            val_data="data/celeba_hq/validation_static_view.flist",
            log_dir="logs/full_model_celeba_hq_256",
        )
        assert config == expected
        assert (config.cnum, config.disc_cnum, config.beta2, config.d_steps) == (48, 64, 0.999, 1)
        assert (config.gan, config.gan_loss_alpha, config.l1_loss_alpha) == ("sngan", 1.0, 1.0)
        assert config.gan_with_mask is True and config.ae_loss is True
        assert config.guided is False and config.edge_threshold == 0.6
        assert (config.train_spe, config.max_iters, config.val_psteps) == (4000, 100000000, 2000)
        assert config.img_shapes == (256, 256, 3) and config.batch_size == 16
        assert (config.height, config.width, config.max_delta_width) == (128, 128, 32)
        assert (config.viz_max_out, config.static_view_size, config.num_gpus) == (10, 30, 1)
        assert (config.lr, config.beta1) == (1e-4, 0.5)


def test_v2_overrides_and_values(v2_yml):
    c = load_config(v2_yml, ["max_iters=10", "dataset=places2", "guided=true", "batch_size=4"])
    assert (c.max_iters, c.batch_size, c.guided) == (10, 4, True)
    assert c.train_data == "data/places2/train_shuffled.flist"
    c = load_config(v2_yml, ["num_gpus_per_job=2", "model_restore=logs/places2_gated_conv"])
    assert (c.num_gpus, c.model_restore) == (2, "logs/places2_gated_conv")
    c = load_config(v2_yml, ["log_dir=2024-01-01"])  # YAML would read a date: kept as text
    assert c.log_dir == "2024-01-01"
    edited(v2_yml, "gpu_type: 'nvidia-tesla-p100'", "gpu_type: 'v100'\nname: x")
    with pytest.raises(ConfigError, match=r"duplicate key 'name'"):
        load_config(v2_yml)


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("gan: 'sngan'", "gan: 'wgan_gp'", r"key 'gan' must be 'sngan' for deepfill_v2"),
        ("padding: 'SAME'", "padding: 'REFELECT'", r"key 'padding' must be 'SAME'"),
        ("edge_threshold: 0.6", "edge_threshold: 0.6\nmask_type: x", r"unknown key 'mask_type'"),
        ("l1_loss_alpha: 1.", "l1_loss_alpha: one", r"key 'l1_loss_alpha' must be a number"),
        ("val: False", "val: True", r"key 'val' is true but 'val_data' is empty"),
    ],
)
def test_v2_bad_values(v2_yml, old, new, match):
    if old == "val: False":  # a data_flist entry without a validation list
        edited(v2_yml, "'data/celeba_hq/train_shuffled.flist',\n", "'t.flist'\n")
        edited(v2_yml, "    'data/celeba_hq/validation_static_view.flist'\n", "")
    edited(v2_yml, old, new)
    with pytest.raises(ConfigError, match=match) as e:
        load_config(v2_yml)
    assert str(v2_yml) in str(e.value) and "original v2 inpaint.yml" in str(e.value)


def test_v2_ignored_keys_do_not_change_the_config(v2_yml):
    base = load_config(v2_yml)
    for old, new in [
        ("num_cpus_per_job: 4", "num_cpus_per_job: 16"),
        ("discounted_mask: True", "discounted_mask: False"),
        ("l1_loss: True", "l1_loss: False"),
        ("name: places2_gated_conv_v100", "name: other"),
    ]:
        edited(v2_yml, old, new)
    assert load_config(v2_yml) == base


def test_translated_config_round_trips_in_our_format(v1_yml, v2_yml, tmp_path):
    for path in (v1_yml, v2_yml):
        config = load_config(path)
        saved = save_config(config, tmp_path / f"{path.parent.name}.yml")
        assert detect_dialect(yaml.safe_load(saved.read_text())) is None
        assert load_config(saved) == config


def _translate(path):
    """The translator called directly, as load_config calls it through its entry point."""
    data = yaml.safe_load(pathlib.Path(path).read_text())
    assert TRANSLATOR.detect(data)
    return TRANSLATOR.translate(data, str(path), ())


def test_translator_refuses_our_format():
    assert not TRANSLATOR.detect({"model": "deepfill_v2"})
    with pytest.raises(ConfigError, match=r"not an original inpaint.yml"):
        translate_inpaint_dict({"model": "deepfill_v2"}, "ours.yml")


def test_translator_is_found_through_its_entry_point():
    from deepfill_tf.config.loading import translators

    assert TRANSLATOR in translators()


# --- .flist ---------------------------------------------------------------------------------


def test_read_flist_strips_and_skips_blank_lines(tmp_path):
    path = tmp_path / "lists" / "train.flist"
    path.parent.mkdir()
    path.write_bytes(b"a/1.png\r\n\n   \n  b/2.jpg  \n/abs/3.png\n\n")
    # relative paths are resolved against the working directory (as the original does), not
    # the flist's folder
    cwd = pathlib.Path.cwd()
    assert read_flist(path) == [str(cwd / "a/1.png"), str(cwd / "b/2.jpg"), "/abs/3.png"]


def test_read_flist_errors(tmp_path):
    empty = tmp_path / "empty.flist"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"empty.flist lists no image paths"):
        read_flist(empty)
    blank = tmp_path / "blank.flist"
    blank.write_text("\n  \n\n")
    with pytest.raises(ConfigError, match=r"lists no image paths"):
        read_flist(blank)
    with pytest.raises(ConfigError, match=r"file list not found: .*missing.flist"):
        read_flist(tmp_path / "missing.flist")


def test_edge_path_replaces_the_last_four_characters():
    assert edge_path("data/x/img_001.jpg") == "data/x/img_001_edge.jpg"
    assert edge_path("a.png") == "a_edge.jpg"
