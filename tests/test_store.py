"""RunStore: concurrent readers while a trainer writes, persistence across restarts, safe run ids, resume."""
import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from gan_core.config import ConfigError, RunConfig
from gan_core.runs import files as rf
from gan_core.runs.record import KEEP_CHECKPOINTS, MAX_GRIDS_IN_MEMORY, MAX_ROWS_IN_MEMORY, RunRecord
from gan_core.runs.store import RunStore

WAIT = 120
TERMINAL = ("finished", "stopped", "failed", "diverged")


def test_concurrent_readers_while_training(store, tiny_config):
    """Readers snapshot once per training step (a tight loop would only measure GIL starvation) while the
    trainer writes rows, grids and checkpoints; nothing raises and nobody sees the step go backwards."""
    readers = 4
    everyone_reading = threading.Barrier(readers + 1)
    progress = threading.Condition()
    state = {"step": 0, "done": False}

    def on_step(trainer):
        if trainer.step == 5:  # the readers are all reading before the trainer writes the rest
            everyone_reading.wait(WAIT)
        with progress:
            state["step"] = trainer.step
            progress.notify_all()

    cfg = tiny_config(arch="mlp", steps=60, log_every=1, sample_every=5, checkpoint_every=20)
    run_id = store.start(cfg, hooks=[on_step])
    errors, histories = [], [[] for _ in range(readers)]

    def read(history):
        try:
            while True:
                snap = store.snapshot(run_id)
                steps = snap.metrics["step"].tolist()
                assert steps == sorted(set(steps)), "metric steps out of order or repeated"
                assert snap.grid_steps == sorted(set(snap.grid_steps))
                if snap.latest_grid is not None:
                    assert snap.latest_grid.dtype == np.uint8
                assert any(r["run_id"] == run_id for r in store.runs())
                history.append(snap.step)
                if len(history) == 1:
                    everyone_reading.wait(WAIT)
                if snap.status in TERMINAL:
                    return
                with progress:
                    progress.wait_for(lambda: state["step"] > snap.step or state["done"], WAIT)
        except Exception as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)
            everyone_reading.abort()

    threads = [threading.Thread(target=read, args=(h,)) for h in histories]
    for t in threads:
        t.start()
    status = store.wait(run_id, WAIT)
    with progress:
        state["done"] = True
        progress.notify_all()
    for t in threads:
        t.join(WAIT)
    assert errors == []
    assert status == "finished" and not any(t.is_alive() for t in threads)
    for history in histories:
        assert len(history) > 2
        assert history == sorted(history), "a reader saw the step go backwards"
        assert history[-1] == 60
    assert store.snapshot(run_id).grid_steps == list(range(0, 61, 5))


def test_runs_reappear_after_a_restart(store, tiny_config, tmp_path):
    run_id = store.start(tiny_config(steps=4, log_every=2, sample_every=2))
    assert store.wait(run_id, WAIT) == "finished"
    live = store.snapshot(run_id)
    fresh = RunStore(tmp_path / "runs")
    assert [r["run_id"] for r in fresh.runs()] == [run_id]
    snap = fresh.snapshot(run_id)
    assert snap.status == "finished" and snap.step == 4 and not snap.live_here
    assert snap.metrics["step"].tolist() == [2, 4]
    assert snap.metrics["d_loss"].tolist() == pytest.approx(live.metrics["d_loss"].tolist(), rel=1e-5)
    assert snap.grid_steps == [0, 2, 4] and snap.latest_grid.shape == live.latest_grid.shape
    assert fresh.config(run_id) == tiny_config(steps=4, log_every=2, sample_every=2)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_running_run_without_its_writer_shows_as_interrupted(store, tiny_config, tmp_path):
    def stop_at_3(trainer):
        if trainer.step == 3:
            trainer.request_stop()

    run_id = store.start(tiny_config(steps=100_000), hooks=[stop_at_3])
    assert store.wait(run_id, WAIT) == "stopped"
    run_dir = store.run_dir(run_id)
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "running"}))  # as left by a killed process
    (run_dir / "writer.lock").write_text(json.dumps({"pid": dead_pid(), "host": rf.HOST}))
    fresh = RunStore(tmp_path / "runs")
    try:
        snap = fresh.snapshot(run_id)
        assert snap.status == "interrupted" and "Resume" in snap.message
        assert fresh.resume(run_id) == "running"  # the dead writer's lock is taken over
        fresh.stop(run_id)
        assert fresh.wait(run_id, WAIT) == "stopped"
        assert fresh.snapshot(run_id).step >= 3
    finally:
        fresh.shutdown()


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "/etc", "", ".hidden", "x/../../y", "a\\..\\b"])
def test_run_ids_cannot_escape_the_runs_folder(store, bad):
    with pytest.raises(KeyError):
        store.run_dir(bad)
    with pytest.raises(KeyError):
        store.snapshot(bad)


def test_run_names_become_safe_folder_names(store, tiny_config):
    with pytest.raises(ConfigError):
        store.start(tiny_config(steps=1, name="../../evil"))
    run_id = store.start(tiny_config(steps=1, name="my.run-1"))
    assert store.wait(run_id, WAIT) == "finished"
    assert store.run_dir(run_id).parent == store.root and run_id.endswith("my.run-1")


def test_bad_config_creates_no_folder_and_no_thread(store, tiny_config):
    with pytest.raises(ConfigError):
        store.start({**tiny_config().to_dict(), "lr_d": -1})
    assert list(store.root.iterdir()) == [] and store.live_runs() == []


def test_critic_losses_say_so(store, tiny_config):
    run_id = store.start(tiny_config(loss="wgan-gp", steps=2))
    assert store.wait(run_id, WAIT) == "finished"
    assert store.snapshot(run_id).score_kind == "critic"


def test_continue_a_finished_run(store, tiny_config):
    run_id = store.start(tiny_config(steps=4, log_every=1, checkpoint_every=2))
    assert store.wait(run_id, WAIT) == "finished"
    with pytest.raises(ConfigError) as e:
        store.continue_run(run_id)  # nothing left to train
    assert "already reached its end" in str(e.value)
    store.continue_run(run_id, steps=7)
    assert store.wait(run_id, WAIT) == "finished"
    snap = store.snapshot(run_id)
    assert snap.step == 7 and snap.metrics["step"].tolist() == list(range(1, 8))
    assert any("resumed from step_00000004" in e for e in snap.events)


def test_a_stop_left_in_control_json_by_another_process(store, tiny_config):
    def external_stop(trainer):
        if trainer.step == 2:
            rf.atomic_write(trainer.record.dir / "control.json", json.dumps({"command": "stop"}))

    run_id = store.start(tiny_config(steps=100_000), hooks=[external_stop])
    assert store.wait(run_id, WAIT) == "stopped"
    assert store.snapshot(run_id).step == 2


def test_memory_is_bounded_and_disk_keeps_everything(tmp_path):
    run_dir = tmp_path / "r"
    (run_dir / "samples").mkdir(parents=True)
    (run_dir / "metrics.csv").write_text(",".join(rf.METRIC_COLUMNS) + "\n")
    rec = RunRecord("r", run_dir)
    n = MAX_ROWS_IN_MEMORY * 3
    for start in range(0, n, 500):
        rec.add_metrics([{"step": s + 1, "d_loss": 1.0} for s in range(start, start + 500)])
    assert len(rec.rows) <= MAX_ROWS_IN_MEMORY
    assert rec.rows[0]["step"] == 1 and rec.rows[-1]["step"] == n
    assert len(rf.parse_csv_text((run_dir / "metrics.csv").read_text(), rf.METRIC_COLUMNS)) == n
    snap = rec.snapshot(max_points=100)
    assert len(snap.metrics) <= 102 and snap.metrics["step"].iloc[-1] == n
    image = np.zeros((4, 4, 3), np.uint8)
    for step in range(MAX_GRIDS_IN_MEMORY + 10):
        rec.add_grid(step, image)
    assert len(rec._grids) == MAX_GRIDS_IN_MEMORY
    assert rf.list_grid_steps(run_dir) == list(range(MAX_GRIDS_IN_MEMORY + 10))
    assert rec.grid(0).shape == (4, 4, 3)  # evicted from memory, read back from disk


def test_kept_checkpoints_span_the_run_and_include_the_newest(store, tiny_config):
    run_id = store.start(tiny_config(arch="mlp", steps=4 * KEEP_CHECKPOINTS, checkpoint_every=1))
    assert store.wait(run_id, WAIT) == "finished"
    steps = [int(name[5:13]) for name in store.snapshot(run_id).checkpoints]
    assert len(steps) == KEEP_CHECKPOINTS and steps[-1] == 4 * KEEP_CHECKPOINTS
    assert steps[0] <= 8  # the first fifth of the run still has a fork point; only the newest five lost it



def test_pages_get_the_runs_config_typed(store, tiny_config, tmp_path):
    """A snapshot carries the run's RunConfig (pages read fields, never dict keys); a run whose config.json does
    not pass its checks is unreadable and carries none."""
    cfg = tiny_config(loss="wgan-gp", steps=2)
    run_id = store.start(cfg)
    assert store.wait(run_id, WAIT) == "finished"
    snap = RunStore(tmp_path / "runs").snapshot(run_id)
    assert snap.config == cfg and snap.score_kind == cfg.loss_info.scores == "critic"
    bad = tmp_path / "runs" / "hand-edited"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({**cfg.to_dict(), "batch_size": -5}))
    snap = RunStore(tmp_path / "runs").snapshot("hand-edited")
    assert snap.status == "unreadable" and snap.config is None


def test_a_restorer_runs_folder_names_its_task():
    from gan_core.presets import build_config
    from gan_core.runs.store import run_label
    assert run_label(build_config("inpaint-mnist")).startswith("inpaint-")
    assert run_label(build_config("superres-mnist")).startswith("superres-")
    assert run_label(build_config("fast-mnist")) == "dcgan28-bce-mnist-embedded"


def test_waiting_on_a_run_another_store_trains_blocks_until_it_ends(store, tiny_config, tmp_path, monkeypatch):
    """A second store on the same folder (another process, in real life: a CLI beside the server) waits on the run
    by reading its status, instead of answering at once with "running" (callers looping on wait spun a core)."""
    import time as real_time

    import gan_core.runs.store as store_module
    held, reached = threading.Event(), threading.Event()

    def hold_at_first_step(trainer):
        if trainer.step == 1:
            reached.set()
            held.wait(60)

    run_id = store.start(tiny_config(arch="mlp", steps=3), hooks=[hold_at_first_step])
    assert reached.wait(60)

    class PollingClock:  # the watcher's first poll lets the run go on: no timing guess in the test
        def __getattr__(self, name):
            return getattr(real_time, name)

        def sleep(self, seconds):
            held.set()
            real_time.sleep(min(seconds, 0.05))

    monkeypatch.setattr(store_module, "time", PollingClock())
    try:
        assert RunStore(tmp_path / "runs").wait(run_id) == "finished"
    finally:
        held.set()  # a failing wait must not leave the run held for a minute


def test_a_run_handle_reaches_a_run_by_id(store, tiny_config):
    """Pages and the CLI reach a run through one object: folder, checkpoints by step, generator, config, status."""
    run_id = store.start(tiny_config(arch="mlp", steps=4, checkpoint_every=2))
    assert store.wait(run_id) == "finished"
    run = store.handle(run_id)
    assert run.dir == store.run_dir(run_id) and run.status == "finished" and run.config.steps == 4
    assert sorted(run.checkpoints()) == [2, 4] and run.checkpoint() == run.checkpoints()[4]
    G, cfg, step = run.generator()
    assert step == 4 and cfg.arch == "mlp" and run.generator() is not None
    assert run.generator()[0] is G  # loaded once per checkpoint file, shared by every page
    assert run.generator(run.checkpoints()[2].name)[2] == 2
    with pytest.raises(KeyError):
        store.handle("no-such-run")
