"""RunConfig: validation messages a student understands, JSON round trip, presets, dataset-driven defaults."""
import json

import pytest

from gan_core.config import ConfigError, RunConfig, field_choices, field_help
from gan_core.presets import PRESETS, build_config


def problems_of(**values) -> dict:
    """Every problem reported for these values, whether from_dict raises or validate() does."""
    try:
        cfg = RunConfig.from_dict({**RunConfig().to_dict(), **values})
    except ConfigError as e:
        return e.problems
    return cfg.problems()


def test_defaults_validate():
    assert RunConfig().problems() == {}


@pytest.mark.parametrize("field, value, words", [
    ("lr_d", -0.1, ["learning rate for D", "> 0", "≤ 1", "-0.1"]),
    ("lr_g", 0.0, ["learning rate for G", "> 0", "got 0"]),
    ("batch_size", 0, ["batch size", "≥ 1", "got 0"]),
    ("n_critic", 50, ["n_critic", "≤ 20", "got 50"]),
    ("label_smoothing", 0.9, ["label smoothing", "≤ 0.5", "0.9"]),
])
def test_out_of_range_message_names_field_range_and_value(field, value, words):
    problems = problems_of(**{field: value})
    assert set(problems) == {field}
    for word in words:
        assert word in problems[field]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "nan", "-inf"])
def test_non_finite_number_refused(value):
    problems = problems_of(lr_d=value)
    assert "finite" in problems["lr_d"] and "learning rate for D" in problems["lr_d"]


def test_nan_in_json_refused():
    text = json.dumps({**RunConfig().to_dict(), "beta1": float("nan")})  # json writes NaN, which json.loads accepts
    with pytest.raises(ConfigError) as e:
        RunConfig.from_json(text)
    assert "finite" in e.value.problems["beta1"]


def test_empty_and_text_refused_with_field_named():
    assert "empty" in problems_of(batch_size="")["batch_size"]
    assert "must be a number" in problems_of(batch_size="abc")["batch_size"]
    assert "'abc'" in problems_of(lr_g="abc")["lr_g"]
    assert "whole number" in problems_of(steps=2.5)["steps"]
    assert "true or false" in problems_of(conditional="maybe")["conditional"]
    assert "whole numbers" in problems_of(g_hidden="256,abc")["g_hidden"]
    assert "1 to 8" in problems_of(g_hidden=[])["g_hidden"]


def test_every_bad_field_reported_at_once():
    problems = problems_of(lr_d=-1.0, batch_size="x", dataset="nope", colour="red")
    assert {"lr_d", "batch_size", "dataset", "colour"} <= set(problems)
    assert problems["colour"] == "unknown setting"


def test_bad_choice_lists_the_choices():
    msg = problems_of(dataset="nope")["dataset"]
    assert "mnist-embedded" in msg and "'nope'" in msg


def test_image_arch_on_points_refused_with_reason():
    cfg = build_config(dataset="ring-8", arch="dcgan28")
    problems = cfg.problems()
    assert "2-D point set" in problems["arch"] and "mlp2d" in problems["arch"]
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert "arch" in e.value.problems


def test_points_arch_on_images_refused():
    assert "holds images" in build_config(dataset="mnist-embedded", arch="mlp2d").problems()["arch"]


@pytest.mark.parametrize("dataset", ["ring-8", "image-folder"])
def test_conditional_on_unlabelled_set_refused(dataset):
    arch = "mlp2d" if dataset == "ring-8" else "mlp"
    problems = build_config(dataset=dataset, arch=arch, conditional=True).problems()
    assert "class labels" in problems["conditional"] and dataset in problems["conditional"]


def test_other_combinations_refused():
    assert "image size" in build_config(arch="dcgan32", image_size=28).problems()["image_size"]
    assert "never end" in build_config(steps=0, max_seconds=0).problems()["steps"]
    assert "one per class" in build_config(conditional=True, grid_size=4).problems()["grid_size"]
    assert "name" in problems_of(name="../../etc")
    assert "at least 2" in build_config(arch="dcgan28", batch_size=1).problems()["batch_size"]
    assert build_config(arch="dcgan32", batch_size=1).problems() == {}


def test_json_round_trip_is_exact():
    cfg = build_config(preset="cgan-mnist", lr_d=1.5e-4, g_hidden=[7, 9], name="my-run", spectral_norm=True)
    back = RunConfig.from_json(cfg.to_json())
    assert back == cfg
    assert back.to_dict() == cfg.to_dict()


def test_bad_json_refused():
    with pytest.raises(ConfigError) as e:
        RunConfig.from_json("{not json")
    assert "not valid JSON" in str(e.value)
    with pytest.raises(ConfigError):
        RunConfig.from_json("[1, 2]")


def test_replace_coerces_and_checks():
    cfg = RunConfig().replace(batch_size="32", g_hidden="64, 64")
    assert cfg.batch_size == 32 and cfg.g_hidden == [64, 64]
    with pytest.raises(ConfigError):
        RunConfig().replace(batch_size="lots")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_validates_and_round_trips(name):
    cfg = build_config(name).validate()
    assert cfg.preset == name
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert PRESETS[name]["description"]


def test_classic_presets_follow_their_seeds():
    mlp = build_config("classic-mlp")
    assert (mlp.arch, mlp.g_hidden, mlp.d_hidden, mlp.leaky_slope, mlp.z_dim, mlp.noise, mlp.loss) == \
        ("mlp", [256, 256], [256, 256], 0.2, 100, "gaussian", "bce")
    assert (mlp.optimizer, mlp.lr_d, mlp.lr_g, mlp.beta1, mlp.beta2, mlp.batch_size) == ("adam", 3e-4, 3e-4, 0.9, 0.999, 128)
    dc = build_config("classic-dcgan")
    assert (dc.arch, dc.lr_d, dc.lr_g, dc.beta1, dc.beta2, dc.batch_size, dc.z_dim, dc.g_every, dc.loss) == \
        ("dcgan32", 2e-4, 2e-4, 0.5, 0.999, 128, 100, 2, "bce")


def test_no_flags_is_the_fast_default_on_embedded_mnist():
    cfg = build_config().validate()
    assert cfg.dataset == "mnist-embedded" and cfg.max_seconds > 0


@pytest.mark.parametrize("dataset", ["ring-8", "grid-25", "spiral", "two-moons", "line"])
def test_points_dataset_alone_gets_2d_defaults(dataset):
    cfg = build_config(dataset=dataset).validate()
    assert cfg.arch == "mlp2d" and cfg.is_2d and not cfg.conditional


def test_unlabelled_image_set_alone_is_not_conditional():
    cfg = build_config(dataset="image-folder")
    assert not cfg.conditional and "conditional" not in cfg.problems()


def test_explicit_steps_replace_the_time_limit():
    cfg = build_config(steps=10)
    assert cfg.steps == 10 and cfg.max_seconds == 0


def test_unknown_preset_named():
    with pytest.raises(ConfigError) as e:
        build_config("nope")
    assert "nope" in e.value.problems["preset"]


def test_every_field_has_help_and_choices_are_valid():
    for name in RunConfig().to_dict():
        assert field_help(name)
    assert "ring-8" in field_choices("dataset") and "wgan-gp" in field_choices("loss")


def test_registries_declare_their_settings_and_the_form_follows_them():
    """Each arch / loss / dataset entry names the config fields it uses; the Train form shows exactly those."""
    from gan_core.config import FIELD_INFO
    from gan_core.data import DATASETS
    from gan_core.losses import LOSSES
    from gan_core.models import ARCHS
    from ui.form import relevant
    for entry in [*ARCHS.values(), *LOSSES.values()]:
        assert set(entry.settings) <= set(FIELD_INFO), entry
    form = {"arch": "dcgan32", "loss": "wgan-gp", "dataset": "mnist-embedded"}
    assert relevant("d_norm", form) and relevant("gp_lambda", form) and not relevant("clip_value", form)
    assert not relevant("g_hidden", form) and not relevant("data_root", form) and relevant("r1_gamma", form)
    form = {"arch": "mlp2d", "loss": "wgan", "dataset": "ring-8"}
    assert relevant("g_hidden", form) and relevant("clip_value", form) and not relevant("conditional", form)
    assert {name for name, info in DATASETS.items() if info.needs_data_root} == {"mnist", "fashion-mnist", "cifar10",
                                                                                 "celeba", "image-folder"}


def test_arch_and_loss_help_name_every_registered_entry():
    """The help text is derived from the registries: a new architecture or loss shows up without editing config.py."""
    from gan_core.config import field_help
    from gan_core.losses import LOSSES
    from gan_core.models import ARCHS
    for name, arch in ARCHS.items():
        assert f"`{name}`: {arch.description}" in field_help("arch")
    for name in LOSSES:
        assert f"`{name}`" in field_help("loss")
