"""The fair server: RunStore's concurrent-run limit and its queue (issue 17). Synchronised with events and the
store's own wait APIs, never sleeps."""
import threading

import pytest

from gan_core import RunStore
from gan_core.classroom import max_runs_setting, password_matches, teacher_password
from gan_core.runs.files import RunBusy

WAIT = 120


def held_until(event: threading.Event, reached: threading.Event):
    """A trainer hook that keeps its run training (one slot taken) until `event` is set."""

    def hook(trainer):
        reached.set()
        event.wait(WAIT)

    return hook


@pytest.fixture
def limited(tmp_path):
    s = RunStore(tmp_path / "runs", max_runs=1)
    yield s
    s.shutdown(timeout=60)


def test_a_start_beyond_the_limit_queues_and_starts_by_itself_when_a_slot_frees(limited, tiny_config):
    release, reached = threading.Event(), threading.Event()
    first = limited.start(tiny_config(arch="mlp", steps=3), hooks=[held_until(release, reached)])
    reached.wait(WAIT)
    second = limited.start(tiny_config(arch="mlp", steps=3, name="second"))
    third = limited.start(tiny_config(arch="mlp", steps=3, name="third"))

    status = {r["run_id"]: r["status"] for r in limited.runs()}
    assert status[first] == "running" and status[second] == "queued" and status[third] == "queued"
    queue = limited.queue()
    assert [(q["run_id"], q["position"]) for q in queue] == [(second, 1), (third, 2)]
    assert queue[0]["waits_for"] == first and queue[1]["waits_for"] == second
    assert limited.snapshot(second).status == "queued"  # every page reads it like any run

    release.set()
    assert limited.wait(first, WAIT) == "finished"
    assert limited.wait(second, WAIT) == "finished"  # started by itself, in order
    assert limited.wait(third, WAIT) == "finished"
    assert limited.queue() == []
    assert limited.snapshot(third).step == 3


def test_cancel_takes_a_run_out_of_the_queue_and_leaves_no_folder(limited, tiny_config):
    release, reached = threading.Event(), threading.Event()
    first = limited.start(tiny_config(arch="mlp", steps=2), hooks=[held_until(release, reached)])
    reached.wait(WAIT)
    waiting = limited.start(tiny_config(arch="mlp", steps=2))
    run_dir = limited.run_dir(waiting)
    with pytest.raises(KeyError, match="queue"):
        limited.pause(waiting)
    limited.stop(waiting)  # Stop on a waiting run cancels it
    assert not run_dir.exists() and limited.queue() == []
    with pytest.raises(KeyError):
        limited.cancel(waiting)
    with pytest.raises(KeyError, match="not waiting"):
        limited.cancel(first)
    release.set()
    assert limited.wait(first, WAIT) == "finished"


def test_raising_the_limit_starts_waiting_runs_at_once(limited, tiny_config):
    release, reached = threading.Event(), threading.Event()
    first = limited.start(tiny_config(arch="mlp", steps=2), hooks=[held_until(release, reached)])
    reached.wait(WAIT)
    second_reached = threading.Event()
    second = limited.start(tiny_config(arch="mlp", steps=2), hooks=[held_until(release, second_reached)])
    assert limited.queue()[0]["run_id"] == second
    limited.set_max_runs(2)
    assert limited.wait_started(second, WAIT)
    assert second_reached.wait(WAIT)  # training while the first still holds its slot
    assert sorted(limited.live_runs()) == sorted([first, second])
    release.set()
    assert limited.wait(first, WAIT) == limited.wait(second, WAIT) == "finished"


def test_resume_refuses_while_the_server_is_full(limited, tiny_config):
    done = limited.start(tiny_config(arch="mlp", steps=2, checkpoint_every=1))
    assert limited.wait(done, WAIT) == "finished"
    release, reached = threading.Event(), threading.Event()
    busy = limited.start(tiny_config(arch="mlp", steps=2), hooks=[held_until(release, reached)])
    reached.wait(WAIT)
    with pytest.raises(RunBusy, match="limit"):
        limited.continue_run(done, steps=4)
    release.set()
    assert limited.wait(busy, WAIT) == "finished"


def test_a_queued_run_left_by_a_stopped_server_shows_as_cancelled(tmp_path, tiny_config):
    first_server = RunStore(tmp_path / "runs", max_runs=1)
    release, reached = threading.Event(), threading.Event()
    first = first_server.start(tiny_config(arch="mlp", steps=2), hooks=[held_until(release, reached)])
    reached.wait(WAIT)
    waiting = first_server.start(tiny_config(arch="mlp", steps=2))
    release.set()
    first_server.shutdown(timeout=60)  # the queued run never started
    assert first_server.wait(first, WAIT) in ("finished", "stopped")
    later = RunStore(tmp_path / "runs", max_runs=1)
    snap = later.snapshot(waiting)
    assert snap.status == "cancelled" and "start it again" in snap.message


def test_no_limit_by_default(store, tiny_config):
    release = threading.Event()
    ids = [store.start(tiny_config(arch="mlp", steps=2), hooks=[held_until(release, threading.Event())])
           for _ in range(3)]
    assert store.queue() == [] and {r["status"] for r in store.runs()} <= {"starting", "running"}
    release.set()
    assert [store.wait(i, WAIT) for i in ids] == ["finished"] * 3


def test_password_and_limit_settings(monkeypatch):
    monkeypatch.delenv("GAN_STUDIO_TEACHER_PASSWORD", raising=False)
    assert teacher_password() is None and teacher_password({"teacher_password": "s3cret"}) == "s3cret"

    class Broken:
        def get(self, key):
            raise FileNotFoundError("no secrets.toml")

    assert teacher_password(Broken()) is None
    monkeypatch.setenv("GAN_STUDIO_TEACHER_PASSWORD", "from-env")
    assert teacher_password({"teacher_password": "s3cret"}) == "from-env"
    assert password_matches("from-env", "from-env") and not password_matches("from-en", "from-env")
    assert not password_matches(None, "x") and not password_matches("", None)
    assert password_matches("café", "café")

    monkeypatch.setenv("GAN_STUDIO_MAX_RUNS", "3")
    assert max_runs_setting() == (3, "")
    for bad in ("0", "-2", "many", "1e9", "99"):
        monkeypatch.setenv("GAN_STUDIO_MAX_RUNS", bad)
        limit, note = max_runs_setting()
        assert limit >= 1 and "GAN_STUDIO_MAX_RUNS" in note


def test_a_queued_inpainting_run_trains_a_restorer_not_a_noise_gan(limited, tiny_config):
    """The queue builds the task's own trainer (runs/trainers.py): a restorer that waited its turn still trains as
    a restorer, and restore then loads its checkpoint as one."""
    from gan_core import build_config
    from gan_core.restore.training import RestorerTrainer
    from gan_core.runs.handle import load_restorer

    release, reached = threading.Event(), threading.Event()
    first = limited.start(tiny_config(arch="mlp", steps=2), hooks=[held_until(release, reached)])
    reached.wait(WAIT)
    built = []
    cfg = build_config("inpaint-mnist", steps=2, g_features=8, d_features=8, batch_size=8, max_seconds=0,
                       eval_every=0, sample_every=1000, checkpoint_every=2, device="cpu", threads=1).validate()
    queued = limited.start(cfg, hooks=[lambda trainer: built.append(type(trainer))])
    assert limited.snapshot(queued).status == "queued"
    release.set()
    assert limited.wait(queued, WAIT) == "finished", limited.snapshot(queued).message
    assert built and issubclass(built[0], RestorerTrainer)
    assert load_restorer(limited.run_dir(queued)).method == "trained"
