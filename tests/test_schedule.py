"""A run that knows its budget ends settled: both learning rates fall linearly to 0 over the last `lr_decay` of the
run, counted in steps or, when max_seconds ends the run first, on the clock; constant rates before that, with
`lr_decay: 0`, and in the hand-stepped 2-D playground, which has no end."""
import pytest

from gan_core.config import ConfigError
from gan_core.presets import build_config
from gan_core.engine.gan import lr_factor
from gan_core.playground.session import Playground, PlaygroundSettings
from gan_core.engine.trainer import Trainer

WAIT = 120


def lrs(trainer: Trainer) -> tuple[float, float]:
    return trainer.gan.opt_g.param_groups[0]["lr"], trainer.gan.opt_d.param_groups[0]["lr"]


def test_factor_is_one_until_the_tail_then_falls_linearly_to_zero():
    assert [lr_factor(p, 0.5) for p in (0.0, 0.25, 0.5)] == [1.0, 1.0, 1.0]
    assert lr_factor(0.75, 0.5) == pytest.approx(0.5) and lr_factor(0.9, 0.5) == pytest.approx(0.2)
    assert lr_factor(1.0, 0.5) == 0.0 and lr_factor(1.0, 1.0) == 0.0 and lr_factor(0.5, 1.0) == pytest.approx(0.5)
    assert {lr_factor(p, 0.0) for p in (0.0, 0.5, 0.99, 1.0)} == {1.0}


def test_a_step_budgeted_run_decays_both_rates_over_its_last_part(store, tiny_config):
    cfg = tiny_config(arch="mlp", steps=20, lr_decay=0.5, lr_decay_after=0, lr_g=1e-3, lr_d=4e-3,
                      log_every=1)
    run_id = store.start(cfg)
    assert store.wait(run_id, WAIT) == "finished"
    rows = store.snapshot(run_id).metrics.set_index("step")
    # the row at step s was read after the update of step s, which used progress (s - 1) / 20
    assert (rows.loc[1:11, "lr_g"] == 1e-3).all() and (rows.loc[1:11, "lr_d"] == 4e-3).all()
    tail = rows.loc[12:20]
    assert tail["lr_g"].is_monotonic_decreasing and tail["lr_g"].iloc[0] < 1e-3
    assert tail["lr_g"].iloc[-1] == pytest.approx(1e-3 * 0.1) and tail["lr_d"].iloc[-1] == pytest.approx(4e-3 * 0.1)


def test_a_time_budgeted_run_decays_on_the_clock(tiny_config):
    trainer = Trainer(tiny_config(arch="mlp", steps=0, max_seconds=10.0, lr_decay=0.5, lr_decay_after=0, lr_g=1e-3,
                                  lr_d=2e-3))
    trainer.train_iteration()
    assert lrs(trainer) == (1e-3, 2e-3)
    trainer.elapsed = 7.5  # three quarters of the time: half way down the tail
    trainer.train_iteration()
    assert lrs(trainer) == pytest.approx((0.5e-3, 1e-3))
    trainer.elapsed = 9.9
    trainer.train_iteration()
    assert lrs(trainer) == pytest.approx((0.02e-3, 0.04e-3))


def test_whichever_budget_ends_the_run_first_sets_the_schedule(tiny_config):
    trainer = Trainer(tiny_config(arch="mlp", steps=100, max_seconds=1000.0, lr_decay=0.5, lr_decay_after=0,
                                  lr_g=1e-3))
    trainer.step, trainer.elapsed = 75, 1.0  # steps end it first
    trainer.train_iteration()
    assert lrs(trainer)[0] == pytest.approx(0.5e-3)
    assert trainer.progress(clock=False) == pytest.approx(0.76)  # DDP's ranks: steps only, so all use one rate


def test_constant_rates_with_lr_decay_off(tiny_config):
    trainer = Trainer(tiny_config(arch="mlp", steps=10, lr_decay=0.0, lr_g=1e-3, lr_d=2e-3))
    for _ in range(10):
        trainer.train_iteration()
    assert lrs(trainer) == (1e-3, 2e-3)


def test_the_hand_stepped_playground_keeps_its_rates():
    settings = PlaygroundSettings(g_width=8, d_width=8, batch_size=16, lr_g=1e-3, lr_d=2e-3)
    pg = Playground(settings)
    assert pg.gan.cfg.lr_decay > 0  # built from the 2-D default, whose runs do decay
    pg.run(30)
    assert pg.gan.opt_g.param_groups[0]["lr"] == 1e-3 and pg.gan.opt_d.param_groups[0]["lr"] == 2e-3


def test_the_defaults_decay_and_lr_decay_is_validated():
    assert build_config("fast-mnist").lr_decay > 0 and build_config("2d-default").lr_decay > 0
    with pytest.raises(ConfigError, match="lr decay must be ≥ 0 and ≤ 1"):
        build_config("fast-mnist", lr_decay=1.5)


class RankZeroIsThreeQuartersThrough:
    """A DDP context (a second rank's view) whose rank 0 has used three quarters of its clock budget."""
    time_up = False

    def agree(self, stop, pause, time_up, progress) -> float:
        return 0.75  # rank 0's progress, whatever this rank's own clock says


class NoControlRequests:
    def poll_control(self, controls) -> None:
        pass


def test_worker_processes_on_a_time_budget_decay_on_rank_zeros_clock(tiny_config):
    """`--workers` runs of a time-budgeted preset (fast-mnist: steps 0, max_seconds 60) decayed nothing: each rank
    counted steps only, and there were none to count. Now every rank follows rank 0's clock, shared at each poll."""
    trainer = Trainer(tiny_config(arch="mlp", steps=0, max_seconds=10.0, lr_decay=0.5, lr_decay_after=0, lr_g=1e-3,
                                  lr_d=2e-3))
    trainer.dist, trainer.record = RankZeroIsThreeQuartersThrough(), NoControlRequests()
    trainer.train_iteration()
    assert lrs(trainer) == (1e-3, 2e-3)  # nothing shared yet: full rates
    trainer._poll_control()
    trainer.train_iteration()
    assert trainer.elapsed < 7.5 and lrs(trainer) == pytest.approx((0.5e-3, 1e-3))  # rank 0's clock, not its own


def test_the_decay_never_begins_before_its_floor_then_falls_linearly_to_zero():
    assert lr_factor(0.6, 0.5, begin=0.7) == 1.0 and lr_factor(0.7, 0.5, begin=0.7) == 1.0
    assert lr_factor(0.85, 0.5, begin=0.7) == pytest.approx(0.5) and lr_factor(1.0, 0.5, begin=0.7) == 0.0
    assert lr_factor(0.75, 0.5, begin=0.2) == pytest.approx(0.5)  # an earlier floor changes nothing
    assert lr_factor(0.99, 0.5, begin=1.2) == 1.0  # a run shorter than the floor keeps its rates


@pytest.mark.parametrize("steps, step, factor", [(500, 499, 1.0),    # shorter than lr_decay_after: constant rates
                                                 (1000, 599, 1.0), (1000, 800, 0.5),  # decays from 600, not 500
                                                 (2000, 999, 1.0), (2000, 1500, 0.5)])  # the second half, as before
def test_a_short_run_keeps_full_rates_until_lr_decay_after(tiny_config, steps, step, factor):
    """fast-mnist's half-way decay began before a 20-s run had learned the labels (FD 37 against 32 with constant
    rates at 500 steps, docs/benchmarks.md); with lr_decay_after it begins at the later of the two."""
    trainer = Trainer(tiny_config(arch="mlp", steps=steps, lr_decay=0.5, lr_decay_after=600, lr_g=1e-3, lr_d=2e-3))
    trainer.step = step
    trainer.train_iteration()
    assert lrs(trainer) == pytest.approx((1e-3 * factor, 2e-3 * factor))


@pytest.mark.parametrize("step, seconds, factor", [(499, 4.99, 1.0), (599, 5.99, 1.0), (800, 8.0, 0.5)])
def test_on_the_clock_the_floor_is_placed_at_the_runs_pace(tiny_config, step, seconds, factor):
    """A 10-s run making 100 steps/s (1,000 in all) decays as a 1,000-step run does: from step 600, half way down
    the tail at step 800."""
    trainer = Trainer(tiny_config(arch="mlp", steps=0, max_seconds=10.0, lr_decay=0.5, lr_decay_after=600,
                                  lr_g=1e-3, lr_d=2e-3))
    trainer.step, trainer.elapsed = step, seconds
    trainer.train_iteration()
    assert lrs(trainer) == pytest.approx((1e-3 * factor, 2e-3 * factor))


def test_the_default_keeps_its_rates_until_the_labels_are_learned_and_the_floor_is_validated():
    cfg = build_config("fast-mnist")
    assert cfg.lr_decay_after > 0 and cfg.lr_decay > 0
    with pytest.raises(ConfigError, match="lr decay after"):
        build_config("fast-mnist", lr_decay_after=-1)
