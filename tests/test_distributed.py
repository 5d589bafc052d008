"""Scale-out: torchrun with 2 CPU processes (gloo) trains one run with DDP. Rank 0 alone writes the run folder;
both ranks end on the same weights and the same step, whatever ended the run (steps, the clock, control.json)."""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO
from safetensors import safe_open
from safetensors.torch import load_file

from gan_core.data import load_images
from gan_core.engine import distributed, shared_mean
from gan_core.engine.trainer import Trainer
from gan_core.losses import LOSSES
from gan_core.models import build_models
from gan_core.presets import build_config
from gan_core.runs import files as rf

TINY = ["--g-features", "8", "--d-features", "8", "--g-hidden", "32", "--d-hidden", "32", "--batch-size", "8",
        "--grid-size", "10", "--eval-every", "0", "--device", "cpu", "--quiet"]


class Torchrun:
    """`python -m torch.distributed.run --standalone --nproc_per_node 2 -m gan_core ...` (a free port each time),
    output to files: worker processes live in their own sessions, so a pipe could outlive the launcher."""

    def __init__(self, args, cwd, dump):
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               distributed.DUMP_ENV: str(dump), "OMP_NUM_THREADS": "1"}
        for name in distributed.TORCHRUN_ENV + ("LOCAL_RANK",):  # the test process itself must not look launched
            env.pop(name, None)
        self.out, self.err = Path(cwd) / "torchrun.out", Path(cwd) / "torchrun.err"  # cwd: the workers start there
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "gan_core",
               *args]
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True)

    def finish(self, timeout=240.0):
        """(exit code, stdout, stderr tail). On a timeout SIGTERM goes to the launcher, which passes it to the
        workers and waits for them, so no rank outlives the test."""
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(90)
        return self.proc.returncode, self.out.read_text(), self.err.read_text()[-3000:]


def torchrun(args, cwd, dump):
    (cwd / "logs").mkdir(exist_ok=True)
    run = Torchrun(args, cwd / "logs", dump)
    code, out, err = run.finish()
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


def rank_dumps(dump):
    """Each rank's final weights (parameters), and its step/status, as written at the end of its run."""
    out = []
    for rank in (0, 1):
        path = dump / f"rank{rank}.safetensors"
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        out.append((load_file(str(path)), meta))
    return out


def assert_ranks_agree(dump, step=None, status="finished"):
    (w0, m0), (w1, m1) = rank_dumps(dump)
    assert m0 == m1 and m0["status"] == status, (m0, m1)
    if step is not None:
        assert int(m0["step"]) == step
    names = [k for k in w0 if k != "rng_state"]
    assert any(k.startswith("G.") for k in names) and any(k.startswith("D.") for k in names)
    different = [k for k in names if not torch.equal(w0[k], w1[k])]
    assert not different, f"ranks ended with different weights: {different[:5]}"
    assert not torch.equal(w0["rng_state"], w1["rng_state"]), "both ranks drew the same noise"
    return w0, int(m0["step"])


def read_status(run_dir):
    return rf.read_json(run_dir / "status.json") or {}


def metric_steps(run_dir):
    path = run_dir / "metrics.csv"
    lines = path.read_text().splitlines()[1:] if path.exists() else []
    return [int(line.split(",")[0]) for line in lines if line.endswith(",")]  # whole rows (no eval columns here)


def wait_for(condition, what, run, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if run.proc.poll() is not None:
            raise AssertionError(f"torchrun ended (rc {run.proc.returncode}) while waiting for {what}: "
                                 f"{run.err.read_text()[-3000:]}")
        threading.Event().wait(0.05)  # polling files another process writes, with a deadline
    raise AssertionError(f"timed out waiting for {what}")


def test_two_ranks_train_one_run_then_resume_on_the_clock(tmp_path):
    dump = tmp_path / "dump"
    # dcgan32: BatchNorm in G and D (per-rank statistics); R1 differentiates D twice through DDP.
    args = ["train", "--dataset", "mnist-embedded", "--arch", "dcgan32", "--r1-gamma", "0.5", "--steps", "6",
            "--log-every", "2", "--sample-every", "3", "--checkpoint-every", "4", *TINY, "--out", str(tmp_path / "runs")]
    result = torchrun(args, tmp_path, dump)
    assert result["status"] == "finished" and result["steps"] == 6 and result["ranks"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump", "logs", "runs"]  # rank 1 made no folder of its own
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["torchrun.err", "torchrun.out"]
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1 and str(run_dirs[0]) == result["run_dir"]
    run_dir = run_dirs[0]

    status = read_status(run_dir)
    assert status["status"] == "finished" and status["step"] == 6 and status["world_size"] == 2
    assert "2 ranks" in status["device"] and not (run_dir / "writer.lock").exists()
    assert json.loads((run_dir / "config.json").read_text())["arch"] == "dcgan32"
    assert metric_steps(run_dir) == [2, 3, 4, 6]  # one row per log/sample/checkpoint step, written once
    assert rf.list_grid_steps(run_dir) == [0, 3, 6]
    assert [p.name for p in rf.list_checkpoints(run_dir)] == ["step_00000004.safetensors", "step_00000006.safetensors"]
    assert "DDP: 2 ranks (gloo); batch 8 per rank = 16 images per step" in (run_dir / "events.log").read_text()

    weights, _ = assert_ranks_agree(dump, step=6)
    final = load_file(str(run_dir / "checkpoints" / "step_00000006.safetensors"))
    assert all(torch.equal(final[k], weights[k]) for k in weights if k.startswith(("G.", "D.")))
    before = load_file(str(run_dir / "checkpoints" / "step_00000004.safetensors"))
    assert any(not torch.equal(before[k], final[k]) for k in weights if k.startswith("G."))  # it trained in between

    sample = subprocess.run([sys.executable, "-m", "gan_core", "sample", str(run_dir), "-n", "8", "-o",
                             str(tmp_path / "x.npy")], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert sample.returncode == 0, sample.stderr
    assert json.loads(sample.stdout.strip().splitlines()[-1])["shape"] == [8, 1, 32, 32]

    # Resume on both ranks from the same checkpoint, now with a time limit: rank 0's clock ends every rank.
    limit = status["elapsed"] + 1.0
    result = torchrun(["train", "--resume", str(run_dir), "--steps", "0", "--max-seconds", f"{limit:.3f}", "--quiet"],
                      tmp_path, dump)
    assert result["status"] == "finished" and result["steps"] > 6 and result["run_dir"] == str(run_dir)
    _, step = assert_ranks_agree(dump, step=result["steps"])
    assert read_status(run_dir)["elapsed"] >= limit
    steps = metric_steps(run_dir)
    assert steps[:4] == [2, 3, 4, 6] and steps[-1] == step and steps == sorted(set(steps))
    assert rf.list_checkpoints(run_dir)[-1].name == f"step_{step:08d}.safetensors"


def test_wgan_gp_pauses_resumes_and_stops_together_through_control_json(tmp_path, evaluator_cache):
    dump = tmp_path / "dump"
    args = ["train", "--dataset", "mnist-embedded", "--arch", "mlp", "--loss", "wgan-gp", "--n-critic", "2",
            "--steps", "1000000", "--log-every", "2", "--sample-every", "50", "--checkpoint-every", "100000",
            "--name", "ddp-control", *TINY, "--eval-every", "1000000", "--eval-samples", "100", "--out", str(tmp_path / "runs")]
    (tmp_path / "logs").mkdir()
    run = Torchrun(args, tmp_path / "logs", dump)
    try:
        run_dir = tmp_path / "runs"
        wait_for(lambda: run_dir.is_dir() and any(run_dir.iterdir()), "the run folder", run)
        run_dir = next(run_dir.iterdir())
        wait_for(lambda: len(metric_steps(run_dir)) >= 2, "metrics", run)

        # The store never starts a second writer for a run another process is writing.
        from gan_core.runs.store import RunStore
        store = RunStore(run_dir.parent)
        with pytest.raises(rf.RunBusy, match=r"already being trained by process \d+"):
            store.continue_run(run_dir.name, steps=2_000_000)
        assert store.resume(run_dir.name) == "running"  # a live run elsewhere: resume only sends an unpause

        rf.atomic_write(run_dir / "control.json", json.dumps({"command": "pause"}))
        wait_for(lambda: read_status(run_dir).get("status") == "paused", "paused", run)
        paused_at = read_status(run_dir)["step"]
        rf.atomic_write(run_dir / "control.json", json.dumps({"command": "resume"}))
        wait_for(lambda: read_status(run_dir).get("status") == "running" and metric_steps(run_dir)[-1] > paused_at,
                 "training again after the pause", run)
        rf.atomic_write(run_dir / "control.json", json.dumps({"command": "stop"}))
    finally:
        code, out, err = run.finish(timeout=120)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "stopped" and result["steps"] > paused_at
    _, step = assert_ranks_agree(dump, step=result["steps"], status="stopped")
    assert read_status(run_dir)["status"] == "stopped" and metric_steps(run_dir)[-1] == step
    assert rf.list_checkpoints(run_dir)[-1].name == f"step_{step:08d}.safetensors"
    evaluation = rf.read_json(run_dir / rf.EVAL_FILE)  # rank 0 alone evaluates; no collective may be involved
    assert evaluation and evaluation["final"] and evaluation["step"] == step and evaluation["fid"] >= 0


# ---------------------------------------------------------------------- in-process pieces
def test_ranks_draw_disjoint_slices_of_one_shuffle():
    data = load_images("mnist-embedded", "./data", 28, 1)
    seed = distributed.derived_seed(0, "order", 0)
    ranks = [distributed.ShardedBatches(data, seed, rank, 2) for rank in (0, 1)]
    n, batch = data.images.shape[0], 100
    seen = [[], []]
    for _ in range(n // (2 * batch)):  # one epoch
        for rank, batches in enumerate(ranks):
            images, labels = batches.sample(batch)
            assert images.shape == (batch, 1, 28, 28) and labels.shape == (batch,)
            idx = batches.order[batches.pos - 2 * batch + rank * batch:][:batch]
            assert torch.equal(labels, data.labels[idx])
            seen[rank] += idx.tolist()
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0]) | set(seen[1])) == n


def test_sync_bn_converts_in_place_only_where_it_can_work(tiny_config):
    cuda = torch.device("cuda")  # the conversion itself needs no GPU; training with it does
    cfg = tiny_config(arch="dcgan32", sync_bn=True)
    G, D = build_models(cfg, 1, 0)
    params = [id(p) for p in list(G.parameters()) + list(D.parameters())]
    assert distributed.sync_batchnorm(cfg, LOSSES[cfg.loss], cuda, G, D) == []
    kinds = {type(m).__name__ for m in list(G.modules()) + list(D.modules())}
    assert "SyncBatchNorm" in kinds and "BatchNorm2d" not in kinds
    assert [id(p) for p in list(G.parameters()) + list(D.parameters())] == params  # optimisers stay valid

    for penalty in (dict(loss="wgan-gp"), dict(r1_gamma=1.0)):
        G, D = build_models(tiny_config(arch="dcgan32", sync_bn=True, **penalty), 1, 0)
        penalised = tiny_config(arch="dcgan32", sync_bn=True, **penalty)
        notes = distributed.sync_batchnorm(penalised, LOSSES[penalised.loss], cuda, G, D)
        assert len(notes) == 1 and "second derivative" in notes[0]
        assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in G.modules())
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in D.modules())

    G, D = build_models(cfg, 1, 0)
    notes = distributed.sync_batchnorm(cfg, LOSSES[cfg.loss], torch.device("cpu"), G, D)
    assert len(notes) == 1 and "needs CUDA" in notes[0]
    assert distributed.sync_batchnorm(tiny_config(arch="dcgan32"), LOSSES["bce"], cuda, G, D) == []
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in list(G.modules()) + list(D.modules()))


def test_a_lone_process_trains_as_before(tiny_config):
    assert not distributed.launched() and distributed.current() is None
    trainer = Trainer(tiny_config())
    assert trainer.dist is None and trainer.gan.G_fwd is trainer.gan.G and isinstance(trainer.stop_event, threading.Event)


def test_continue_refuses_a_run_another_live_process_writes(store, tiny_config):
    run_id = store.start(tiny_config(steps=2, checkpoint_every=1))
    assert store.wait(run_id, timeout=120) == "finished"
    run_dir = store.run_dir(run_id)
    config_before, metrics_before = (run_dir / "config.json").read_text(), (run_dir / "metrics.csv").read_text()
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(run_dir / "writer.lock")], stdout=subprocess.PIPE,
                              stdin=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # a live process holds the run's lock (flock)
        for pid, host in ((holder.pid, rf.HOST), (1234, "another-node")):
            if host != rf.HOST:  # a writer on another machine, whose lock may not reach here: its word counts
                holder.stdin.close()
                holder.wait()
                (run_dir / "writer.lock").write_text(json.dumps({"pid": pid, "host": host}))
            with pytest.raises(rf.RunBusy, match=f"already being trained by process {pid} on {host}"):
                store.continue_run(run_id, steps=10)
            assert not store.live_runs()
            assert (run_dir / "config.json").read_text() == config_before
            assert (run_dir / "metrics.csv").read_text() == metrics_before
    finally:
        holder.kill()
        holder.wait()


LOCK_HOLDER = """
import fcntl, json, os, socket, sys
f = open(sys.argv[1], "w")
fcntl.flock(f, fcntl.LOCK_EX)
f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
f.flush()
print("locked", flush=True)
sys.stdin.read()
"""


# ---------------------------------------------------------------------- train --workers: a local group, no torchrun
class LocalGroup(Torchrun):
    """`python -m gan_core train --workers 2 ...`: this process is rank 0 and starts the other itself."""

    def __init__(self, args, cwd, dump):
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               distributed.DUMP_ENV: str(dump)}
        for name in distributed.TORCHRUN_ENV + ("LOCAL_RANK", "LOCAL_WORLD_SIZE", distributed.SPLIT_ENV):
            env.pop(name, None)
        self.out, self.err = Path(cwd) / "train.out", Path(cwd) / "train.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "gan_core", *args], cwd=cwd, env=env, stdout=out,
                                         stderr=err, text=True)


def test_two_workers_share_each_batch_of_one_run_and_stop_together(tmp_path):
    """The recipe stays the run's: 2 processes take 8 images each of a batch of 16, the run folder and checkpoint
    record 16, the rate counts each image once, and a stop from the dashboard (control.json) ends both."""
    dump, logs = tmp_path / "dump", tmp_path / "logs"
    logs.mkdir()
    args = ["train", "--workers", "2", "--dataset", "mnist-embedded", "--arch", "dcgan28", "--conditional",
            "--steps", "1000000", "--max-seconds", "0", "--log-every", "2", "--sample-every", "1000",
            "--checkpoint-every", "1000", *TINY, "--batch-size", "16", "--out", str(tmp_path / "runs")]
    run = LocalGroup(args, logs, dump)
    try:
        runs = tmp_path / "runs"
        wait_for(lambda: runs.is_dir() and any(runs.iterdir()), "the run folder", run)
        run_dir = next(runs.iterdir())
        wait_for(lambda: len(metric_steps(run_dir)) >= 2, "metrics", run)
        from gan_core.runs.store import RunStore
        RunStore(runs).stop(run_dir.name)  # what the dashboard's Stop does to a run another process trains
    finally:
        code, out, err = run.finish(timeout=120)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "stopped" and result["workers"] == 2 and result["ranks"] == 2
    # each image counted once (twice would be 2x): the rate from the unrounded time lies within what "seconds"
    # (rounded to 0.01 s) allows; a short run can last under 0.1 s, where that is ±5% or more
    images, seconds = result["steps"] * 16, result["seconds"]
    assert images / (seconds + 0.005) - 0.05 <= result["images_per_s"] <= images / max(seconds - 0.005, 1e-3) + 0.05
    assert "(2 worker processes)" in err
    _, step = assert_ranks_agree(dump, step=result["steps"], status="stopped")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump", "logs", "runs"]  # the helper made no folder
    assert json.loads((run_dir / "config.json").read_text())["batch_size"] == 16
    with safe_open(str(rf.list_checkpoints(run_dir)[-1]), framework="pt") as f:
        assert json.loads(f.metadata()["config"])["batch_size"] == 16
    events = (run_dir / "events.log").read_text()
    assert "2 worker processes share each batch of 16 (8 each" in events
    if shared_mean.supported():  # the recipe's BatchNorm (G's), over the batch of 16, not 8 per worker
        assert "BatchNorm normalises over the whole batch, across the worker processes" in events
    assert read_status(run_dir)["status"] == "stopped" and not (run_dir / "writer.lock").exists()


@pytest.mark.parametrize("flags, message", [
    (["--workers", "3"], "--workers 3 must divide the batch size 64"),
    (["--workers", "two"], "--workers must be a whole number or auto"),
    (["--workers", "0"], "--workers must be between 1 and 64"),
    (["--workers", "2", "--dataset", "ring-8"], "--workers is for image runs on a CPU"),
    (["--workers", "2", "--fork", "runs/x"], "a fork or a fix trains in one process"),
])
def test_a_worker_count_that_cannot_work_is_refused_in_one_line(tmp_path, capsys, flags, message):
    from gan_core.cli import main
    assert main(["train", "--out", str(tmp_path / "runs"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not any(tmp_path.iterdir())


def wait_until(condition, what, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        threading.Event().wait(0.1)  # polling files another process writes, with a deadline
    raise AssertionError(f"timed out waiting for {what}")


def test_a_dashboard_store_trains_in_worker_processes_and_still_pauses_resumes_and_stops(tmp_path, tiny_config):
    """RunStore(workers=...) (the dashboard's setting): the run trains in a child `train --workers 2`, outside the
    server's interpreter, and every command still reaches it; what the child refuses comes back as one line."""
    from gan_core.runs.store import RunNotStarted, RunStore
    store = RunStore(tmp_path / "runs", workers=2)
    try:
        cfg = tiny_config(dataset="mnist-embedded", arch="dcgan28", conditional=True, steps=1_000_000, log_every=2,
                          batch_size=16)
        run_id = store.start(cfg)
        assert not store.live_runs() and store.trainer(run_id) is None  # not a thread of this process
        wait_until(lambda: store.snapshot(run_id).step >= 4, "training")
        store.pause(run_id)
        wait_until(lambda: store.snapshot(run_id).status == "paused", "paused")
        paused_at = store.snapshot(run_id).step
        assert store.resume(run_id) == "running"
        wait_until(lambda: store.snapshot(run_id).step > paused_at, "training again")
        store.stop(run_id)
        assert store.wait(run_id, timeout=120) == "stopped"
        assert "2 worker processes share each batch of 16 (8 each" in (store.run_dir(run_id) / "events.log").read_text()
        assert [r["run_id"] for r in store.runs()] == [run_id]

        stopped_at = store.snapshot(run_id).step  # Resume of a stopped run: a process of its own too, as Start
        assert store.resume(run_id) == "running"
        assert not store.live_runs() and store.trainer(run_id) is None
        wait_until(lambda: store.snapshot(run_id).step > stopped_at, "training after the resume")
        assert store.resume(run_id) == "running"  # a second click while the child trains it: no second trainer
        assert store.queue() == [] and len(store.live_runs()) == 0
        store.stop(run_id)
        assert store.wait(run_id, timeout=120) == "stopped"
        assert "resumed from" in (store.run_dir(run_id) / "events.log").read_text()

        missing = cfg.replace(dataset="mnist", data_root=str(tmp_path / "no-data"), steps=10)
        with pytest.raises(RunNotStarted, match="MNIST"):
            store.start(missing)
        assert [r["run_id"] for r in store.runs()] == [run_id]  # no folder left by the refusal
    finally:
        store.shutdown(timeout=60)


RANK_GRADIENTS = """
import os, sys, torch, torch.distributed as dist
from gan_core.engine import distributed, shared_mean
from gan_core.models import build_models, count_params
from gan_core.presets import build_config
ctx = distributed.init_from_env()
rank, out = ctx.rank, sys.argv[1]
torch.manual_seed(rank)  # each rank builds different weights: rank 0's must win
_, D = build_models(build_config("fast-mnist").validate(), 1, 10)
gan = type("Nets", (), {"G": torch.nn.Linear(2, 2), "D": D, "G_ema": None})()
ctx.share_weights(gan)
if sys.argv[2] == "shared memory":
    from gan_core.engine.shared_mean import SharedMean
    ctx.shared = SharedMean.open(ctx, count_params(D))
    assert ctx.shared is not None
x, y = torch.load(os.path.join(out, "batch.pt"))
half = x.shape[0] // ctx.world_size
D(x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half]).square().mean().backward()
ctx.average_grads(D)
torch.save({n: p.grad for n, p in D.named_parameters()} | {"weights." + n: p.detach() for n, p in D.named_parameters()},
           os.path.join(out, f"rank{rank}.pt"))
distributed.shutdown()
"""


@pytest.mark.parametrize("route", ["gloo", pytest.param("shared memory", marks=pytest.mark.skipif(
    not shared_mean.supported(), reason="shared-memory averaging is for Linux on x86-64"))])
def test_worker_processes_start_from_rank_0s_weights_and_average_their_gradients(tmp_path, route):
    """On a CPU the ranks average gradients themselves (one flat all-reduce per net, or a local group's shared
    memory; no DDP wrapper): two halves of a batch must give every rank the gradient of the whole batch, from rank
    0's weights, and the same bits on both ranks (or their weights would part)."""
    torch.manual_seed(0)
    x, y = torch.randn(24, 1, 28, 28), torch.arange(24) % 10
    torch.save((x, y), tmp_path / "batch.pt")
    import socket
    with socket.socket() as s:  # a free port for rank 0's store
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", RANK_GRADIENTS, str(tmp_path), route], cwd=tmp_path, stderr=subprocess.PIPE,
                              text=True, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in (0, 1)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()[-2000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    torch.manual_seed(0)  # rank 0's weights
    _, D = build_models(build_config("fast-mnist").validate(), 1, 10)
    D(x, y).square().mean().backward()
    for name, p in D.named_parameters():
        for got in ranks:
            torch.testing.assert_close(got["weights." + name], p.detach())
            torch.testing.assert_close(got[name], p.grad, rtol=1e-4, atol=1e-6)
        assert torch.equal(ranks[0][name], ranks[1][name])
