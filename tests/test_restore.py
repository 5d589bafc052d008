"""Restoring images (gan_core.restore and `python -m gan_core restore`): damage ops, the GAN-prior search keeps
what is known, and every bad input gets one line naming the problem."""
import json

import numpy as np
import pytest
import torch
from test_cli import run_cli

from gan_core.restore import restorer as rs
from gan_core.restore.damage import apply_mask, downsample, make_mask, match_low_res
from gan_core.runs.handle import load_restorer


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny conditional image run and a tiny 2-D run, trained for two steps each (a checkpoint at the end)."""
    from conftest import TINY

    from gan_core import RunStore, build_config
    store = RunStore(tmp_path_factory.mktemp("restore-runs"))
    image = store.start(build_config(**TINY, steps=2, grid_size=10).validate())
    points = store.start(build_config(**TINY, steps=2, grid_size=10, dataset="ring-8").validate())
    assert store.wait(image) == "finished" and store.wait(points) == "finished"
    yield {"image": store.run_dir(image), "points": store.run_dir(points)}
    store.shutdown()


def digits(n=6):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


FAST = rs.SearchSettings(restarts=2, screen=2, steps=6, layer_steps=4, frames=3, frame_images=2)


# ---------------------------------------------------------------------- damage
def test_masks_have_the_promised_holes():
    centre = make_mask("centre", 3, 28)
    assert centre.shape == (3, 1, 28, 28) and int((centre == 0).sum()) == 3 * 14 * 14
    assert centre[0, 0, 7:21, 7:21].eq(0).all() and centre[0, 0, :7].eq(1).all()
    assert make_mask("left", 1, 28)[0, 0, :, :14].eq(0).all() and make_mask("left", 1, 28)[0, 0, :, 14:].eq(1).all()
    assert make_mask("bottom", 1, 28)[0, 0, 14:].eq(0).all() and make_mask("bottom", 1, 28)[0, 0, :14].eq(1).all()
    for kind in ("random", "strokes"):
        a, b = make_mask(kind, 8, 28, seed=3), make_mask(kind, 8, 28, seed=4)
        assert torch.equal(a, make_mask(kind, 8, 28, seed=3)) and not torch.equal(a, b)
        holes = (a == 0).flatten(1).float().mean(1)
        assert ((holes > 0.02) & (holes < 0.8)).all()  # every image damaged, none wiped out
    with pytest.raises(ValueError, match="unknown mask"):
        make_mask("triangle", 1, 28)


def test_match_low_res_keeps_the_block_means():
    x = digits() * 0.5
    low = downsample(x, 4)
    fixed = match_low_res(torch.zeros_like(x), low, 4)
    assert torch.allclose(downsample(fixed, 4), low, atol=1e-6)
    assert rs.upsample_bicubic(low, 4).shape == x.shape


def test_scores():
    x = digits()
    assert rs.psnr(x, x) > 90 and rs.psnr(torch.zeros_like(x) - 1, torch.ones_like(x)) == pytest.approx(0.0, abs=1e-6)
    hole = make_mask("centre", len(x), 28)
    half_wrong = torch.where(hole > 0, x, -x)
    assert rs.psnr(half_wrong, x, hole) > 90 > rs.psnr(half_wrong, x, 1 - hole)
    assert rs.ssim(x, x) == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------------- the GAN-prior search
def test_prior_inpainting_keeps_known_pixels_and_the_search_improves(runs):
    restorer = load_restorer(runs["image"])
    x = digits()
    mask = make_mask("random", len(x), 28)
    result = rs.restore(restorer, "inpaint", apply_mask(x, mask), mask, settings=FAST)
    assert result.images.shape == x.shape and result.images.dtype == torch.float32
    known = mask.expand_as(x) > 0
    assert torch.equal(result.images[known], x[known])
    assert result.losses[-1] < result.losses[0]
    assert len(result.frames) == 3 and result.frames[0][1].shape == (2, 1, 28, 28)
    assert result.labels is not None and result.labels.shape == (len(x),)  # a conditional G: the class was searched


def test_freeing_gs_hidden_features_fits_what_is_known_better_than_z_alone():
    from conftest import TINY

    from gan_core import build_config
    from gan_core.models import build_models
    G, _ = build_models(build_config(**TINY, init="default").validate(), 1, 10, seed=0)  # PyTorch init: contrasty
    G.eval()
    with torch.no_grad():  # images this G can draw, so a closer fit is possible
        x = G(torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(5)), torch.tensor([3, 1, 4, 1]))
    mask = make_mask("centre", len(x), 28)

    def search(layer_steps):
        settings = rs.SearchSettings(**{**FAST.__dict__, "layer_steps": layer_steps})
        return rs.prior_search(G, "gaussian", "inpaint", apply_mask(x, mask), mask, settings=settings)

    def known_error(result):
        return float(((result.raw - x) ** 2 * mask).sum() / mask.sum())
    z_only, both = search(0), search(20)
    assert known_error(both) < 0.9 * known_error(z_only)
    assert len(both.losses) == FAST.steps + 20 and len(z_only.losses) == FAST.steps  # the page's progress counts both
    known = mask.expand_as(x) > 0
    assert torch.equal(both.images[known], x[known])


def test_a_generator_too_shallow_for_the_second_stage_still_gets_every_frame_and_a_full_progress_bar():
    from conftest import TINY

    from gan_core import build_config
    from gan_core.models import build_models
    G, _ = build_models(build_config(**{**TINY, "g_hidden": [32]}, arch="mlp").validate(), 1, 10, seed=0)  # two layers
    x = digits(4)
    mask = make_mask("centre", len(x), 28)
    ticks = []
    result = rs.prior_search(G.eval(), "gaussian", "inpaint", apply_mask(x, mask), mask, settings=FAST,
                             on_progress=lambda done, total, loss: ticks.append((done, total)))
    assert len(result.losses) == FAST.steps and len(result.frames) == FAST.frames
    assert result.frames[-1][0] == FAST.steps  # the last frame is the search's end, not a step never run
    assert ticks[-1] == (FAST.steps, FAST.steps)  # the page's bar reaches the end (it stopped short before)


def test_prior_superres_outputs_full_size_consistent_with_the_input(runs):
    restorer = load_restorer(runs["image"])
    low = downsample(digits() * 0.5, 4)
    result = rs.restore(restorer, "superres", low, factor=4, settings=FAST)
    assert result.images.shape == (len(low), 1, 28, 28)
    assert torch.allclose(downsample(result.images, 4), low, atol=1e-5)


# ---------------------------------------------------------------------- the CLI
def test_cli_restores_both_tasks(runs, tmp_path, capsys):
    x = digits(4).numpy()
    np.save(tmp_path / "damaged.npy", x)
    np.save(tmp_path / "mask.npy", make_mask("centre", 4, 28).numpy())
    np.save(tmp_path / "low.npy", downsample(torch.from_numpy(x), 4).numpy())
    for argv in (["--task", "inpaint", "--input", str(tmp_path / "damaged.npy"), "--mask", str(tmp_path / "mask.npy")],
                 ["--task", "inpaint", "--input", str(tmp_path / "damaged.npy"), "--mask", "left"],
                 ["--task", "superres", "--input", str(tmp_path / "low.npy"), "--factor", "4"]):
        code, out, err = run_cli(["restore", str(runs["image"]), *argv, "-o", str(tmp_path / "out.npy")], capsys)
        assert code == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        assert set(summary) == {"output", "n", "task", "method", "seconds"}
        assert summary["n"] == 4 and summary["method"] == "prior" and summary["task"] == argv[1]
        y = np.load(tmp_path / "out.npy")
        assert y.shape == (4, 1, 28, 28) and y.dtype == np.float32 and -1 <= y.min() <= y.max() <= 1


def _bad_inputs(tmp_path, runs):
    x = digits(4).numpy()
    files = {"ok": x, "nan": np.where(x > 0.9, np.nan, x).astype(np.float32), "flat": x[:, 0],
             "rgb": np.repeat(x, 3, 1), "big": x * 3, "low": x[:, :, ::4, ::4].copy(), "low3": x[:, :, ::3, ::3].copy(),
             "mask3": np.ones((3, 1, 28, 28), np.float32), "mask_grey": np.full((4, 1, 28, 28), 0.5, np.float32),
             "objects": np.array([{"a": 1}] * 4, dtype=object)}
    for name, value in files.items():
        np.save(tmp_path / f"{name}.npy", value, allow_pickle=True)
    (tmp_path / "text.npy").write_text("not an array")
    f = lambda name: str(tmp_path / f"{name}.npy")  # noqa: E731
    run, points = str(runs["image"]), str(runs["points"])
    linked = tmp_path / "elsewhere"  # a run folder whose config.json is a link out: refused, never followed
    linked.mkdir()
    (linked / "config.json").symlink_to(runs["image"] / "config.json")
    return [  # (argv, words the one-line message must contain)
        ([run, "--task", "inpaint", "--input", f("nan"), "--mask", "centre"], "NaN"),
        ([run, "--task", "inpaint", "--input", f("flat"), "--mask", "centre"], "(N, C, H, W)"),
        ([run, "--task", "inpaint", "--input", f("big"), "--mask", "centre"], "[-1, 1]"),
        ([run, "--task", "inpaint", "--input", f("rgb"), "--mask", "centre"], "do not fit run"),
        ([run, "--task", "inpaint", "--input", f("ok"), "--mask", f("mask3")], "does not match"),
        ([run, "--task", "inpaint", "--input", f("ok"), "--mask", f("mask_grey")], "0 (missing) or 1"),
        ([run, "--task", "inpaint", "--input", f("ok")], "--mask is needed"),
        ([run, "--task", "inpaint", "--input", f("objects"), "--mask", "centre"], "not a readable .npy"),
        ([run, "--task", "inpaint", "--input", f("text"), "--mask", "centre"], "not a readable .npy"),
        ([run, "--task", "inpaint", "--input", f("missing"), "--mask", "centre"], "no such file"),
        ([run, "--task", "superres", "--input", f("ok")], "do not fit run"),
        ([run, "--task", "superres", "--input", f("low3"), "--factor", "4"], "(1, 7, 7)"),
        ([points, "--task", "superres", "--input", f("low")], "2-D points"),
        ([str(tmp_path), "--task", "superres", "--input", f("low")], "not a run folder"),
        ([str(linked), "--task", "superres", "--input", f("low")], "symbolic link"),
        ([run, "--task", "superres", "--input", f("low"), "--factor", "3"], "invalid choice"),
    ]


def test_cli_bad_input_gets_one_line_naming_the_problem(runs, tmp_path, capsys):
    for argv, words in _bad_inputs(tmp_path, runs):
        code, out, err = run_cli(["restore", *argv, "-o", str(tmp_path / "out.npy")], capsys)
        assert code == 2, (argv, out, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
        assert words in err, (argv, err)
    assert not (tmp_path / "out.npy").exists()


# ---------------------------------------------------------------------- trained restorers (task inpaint / superres)
TINY_RESTORER = dict(g_features=8, d_features=8, batch_size=16, max_seconds=0, log_every=5, eval_every=20,
                     sample_every=20, checkpoint_every=1000, device="cpu", threads=1)


def test_restorer_presets_validate_and_bad_combinations_are_named():
    from gan_core.config import ConfigError
    from gan_core.presets import PRESETS, build_config
    for name in ("inpaint-mnist", "superres-mnist", "inpaint-fashion-mnist", "superres-cifar10"):
        assert build_config(name).validate().task in ("inpaint", "superres")
    assert build_config("superres-mnist").factor == 4 and "superres-mnist" in PRESETS
    for overrides, field in ((dict(loss="wgan-gp"), "loss"), (dict(conditional=True), "conditional")):
        with pytest.raises(ConfigError) as e:
            build_config("inpaint-mnist", **overrides).validate()
        assert field in e.value.problems
    with pytest.raises(ConfigError) as e:
        build_config("inpaint-mnist", dataset="ring-8", arch="mlp2d").validate()
    assert "task" in e.value.problems


@pytest.mark.parametrize("task", ["inpaint", "superres"])
def test_a_tiny_restorer_learns_and_restores_through_the_cli(task, store, tmp_path, capsys):
    from gan_core import build_config
    run_id = store.start(build_config(f"{task}-mnist", steps=40, **TINY_RESTORER))
    assert store.wait(run_id, timeout=300) == "finished", store.snapshot(run_id).message
    snap = store.snapshot(run_id)
    l1 = snap.metrics["l1_loss"].dropna()
    assert len(l1) >= 4 and l1.iloc[-1] < l1.iloc[0]  # the reconstruction loss falls
    assert snap.metrics["g_loss"].notna().any() and snap.metrics["psnr"].notna().any()
    assert snap.latest_grid is not None and snap.latest_grid.shape[0] > 3 * 28  # damaged | restored | truth rows

    run_dir = store.run_dir(run_id)
    x = digits(3)
    given, mask = (apply_mask(x, make_mask("centre", 3, 28)), "centre") if task == "inpaint" \
        else (downsample(x, 4), None)
    np.save(tmp_path / "in.npy", given.numpy())
    argv = ["restore", str(run_dir), "--task", task, "--input", str(tmp_path / "in.npy"), "-o", str(tmp_path / "out.npy")]
    code, out, err = run_cli(argv + (["--mask", mask] if mask else []), capsys)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["method"] == "trained"
    assert np.load(tmp_path / "out.npy").shape == (3, 1, 28, 28)
    other = "superres" if task == "inpaint" else "inpaint"
    code, _, err = run_cli(["restore", str(run_dir), "--task", other, "--input", str(tmp_path / "in.npy"),
                            *(["--mask", "centre"] if other == "inpaint" else []), "-o", str(tmp_path / "o.npy")], capsys)
    assert code == 2 and f"trained {task} restorer" in err

    code, out, err = run_cli(["evaluate", str(run_dir), "-n", "50"], capsys)
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["task"] == task and {"psnr", "ssim", "accuracy"} <= set(report) and "baseline" in report


def test_a_restorer_run_resumes_from_its_checkpoint(store):
    from gan_core import build_config
    run_id = store.start(build_config("inpaint-mnist", steps=6, **TINY_RESTORER))
    assert store.wait(run_id, timeout=300) == "finished"
    store.continue_run(run_id, steps=10)
    assert store.wait(run_id, timeout=300) == "finished"
    assert store.snapshot(run_id).step == 10
