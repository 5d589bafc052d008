"""Scale-out: one run trained by several processes with DistributedDataParallel (DDP), launched by torchrun.

    torchrun --nproc_per_node 4 -m gan_core train --preset dcgan64                  # 4 GPUs on one machine
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint host:29500 \\
        -m gan_core train ...                                                      # the same on every node
    python -m gan_core train --workers 2                      # one CPU machine: 2 processes share each batch

Why it is shaped like this:
- `--workers` (cli.py, auto by default) makes a local group without torchrun: the process the user started is
  rank 0 and starts the others (start_local_group). Its ranks split the run's batch (SPLIT_ENV) instead of each
  taking one, so the recipe is the same whatever the worker count: these small nets barely gain from intra-op
  threads (OpenMP barriers on ~100-µs ops), but two single-thread processes each doing half a batch do.
- Every rank runs the same Trainer loop (trainer.py) and so makes the same collectives at the same steps.
  Whatever could end or pause a run on one rank only (the max_seconds clock, control.json, Ctrl-C) is decided
  by rank 0 and broadcast at each control poll (every log_every steps, and every 0.5 s while paused), so no
  rank is ever left waiting in an all-reduce for a rank that has gone.
- Only rank 0 writes the run folder, through the ordinary RunStore, so the dashboard watches a DDP run like any
  other. The other ranks train through a RankRecord that writes nothing.
- Under torchrun batch_size is per rank (the DDP convention): one step trains on world_size × batch_size images;
  in a local group the ranks share it (rank_config). Each rank takes its own slice of one shared shuffle
  (disjoint within an epoch) and draws its own noise from a per-rank stream; the fixed grid noise is the same
  everywhere.
- On GPUs the nets train through DDP wrappers (gradients all-reduced in buckets while the backward runs). On a CPU
  every core already trains, so there is nothing for that overlap to hide behind: the GAN averages each net's
  gradients in one flat all-reduce after its backward (GAN.average_grads = Context.average_grads), and a local
  group through shared memory instead of gloo (shared_mean.py), along with the control poll's message.
- G's update freezes D (requires_grad False); D's DDP wrapper then steps aside, because a DDP forward whose
  backward yields no gradients leaves DDP's reducer waiting and breaks the next step.
- Gradient penalties (WGAN-GP, R1) differentiate D twice. That works through DDP but not through
  SyncBatchNorm (no second derivative), so `sync_bn` leaves such a D's BatchNorm per rank, with a note.
- Live evaluation runs on rank 0 only.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..data import ImageBatches, ImageData, to_unit_range
from ..losses import Loss
from ..models import count_params
from .device import device_label
from .gan import has_batchnorm
from .shared_batchnorm import share_batchnorm
from .shared_mean import SharedMean

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets for every worker
SPLIT_ENV = "GAN_STUDIO_SPLIT_BATCH"  # "1": the ranks share each batch of the run (a local group), not one each
PARENT_ENV = "GAN_STUDIO_GROUP_PARENT"  # a local group's helper ranks end when this process (rank 0) is gone
DUMP_ENV = "GAN_STUDIO_DDP_WEIGHTS_DUMP"  # tests only: each rank writes its final weights to <dir>/rank<r>.safetensors

_current: "Context | None" = None


def launched() -> bool:
    """True in a process started by torchrun (or any launcher that sets the same environment)."""
    return all(name in os.environ for name in TORCHRUN_ENV)


def current() -> "Context | None":
    """This process's DDP context, or None when it trains alone (the dashboard, plain `python -m gan_core`)."""
    return _current


def derived_seed(*parts) -> int:
    """A seed for a named stream (per rank, per resume step) that cannot collide with `seed + offset` streams."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


@dataclass
class Context:
    rank: int
    world_size: int
    local_rank: int
    backend: str
    time_up: bool = False  # rank 0's max_seconds verdict, as last broadcast
    split_batch: bool = False  # a local group: the run's batch_size is shared by the ranks (SPLIT_ENV)
    shared: SharedMean | None = None  # a local group's gradient average through shared memory (CPU)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ collectives (same calls on every rank)
    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The average of `t` over the ranks (a fresh tensor per call, reduced in place)."""
        if self.shared is not None and t.dtype == torch.float32:
            self.shared.average([t])
            return t
        dist.all_reduce(t)
        return t.div_(self.world_size)

    def average_grads(self, net: torch.nn.Module) -> None:
        """`net`'s gradients averaged over the ranks: through shared memory in a local group (shared_mean.py), else
        in one all-reduce of one flat buffer (gloo, CPU). On a CPU whose cores all train, DDP's per-bucket hooks and
        overlap cost more than they hide: ~9 ms of CPU per step on fast-mnist against ~1 ms for this
        (benchmarks/throughput.py --sections cores)."""
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        if not grads:
            return
        if self.shared is not None:
            self.shared.average(grads)
            return
        flat = torch._utils._flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat.div_(self.world_size)
        torch._foreach_copy_(grads, torch._utils._unflatten_dense_tensors(flat, grads))

    def share_weights(self, gan) -> None:
        """Rank 0's weights and buffers (G, D, G's EMA copy) on every rank, as DDP's wrapper does when built."""
        for net in (gan.G, gan.D, gan.G_ema):
            if net is None:
                continue
            tensors = [t.data for t in [*net.parameters(), *net.buffers()] if t.dtype.is_floating_point]
            flat = torch._utils._flatten_dense_tensors(tensors)
            dist.broadcast(flat, src=0)
            torch._foreach_copy_(tensors, torch._utils._unflatten_dense_tensors(flat, tensors))

    def share(self, obj):
        """Rank 0's `obj` on every rank (small, picklable, our own data only)."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def first_error(self, error: str | None) -> str | None:
        """Every rank's error message (or None) → the first one, on every rank, so they all refuse together."""
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, error)
        for rank, message in enumerate(gathered):
            if message:
                return message if rank == 0 else f"rank {rank}: {message}"
        return None

    def node_first(self, check) -> str | None:
        """Run `check()` (→ error message or None) on each node's local rank 0, then on the other ranks, so a
        dataset download happens once per node; every rank gets the first error."""
        error = self.first_error(check() if self.local_rank == 0 else None)
        return error or self.first_error(check() if self.local_rank != 0 else None)

    def agree(self, stop: "AgreedFlag", pause: "AgreedFlag", time_up: bool, progress: float) -> float:
        """Rank 0's [stop, pause, time up] become every rank's, in one message with rank 0's `progress` through
        its budget, which it returns. Called at every control poll, on every rank."""
        message = torch.zeros(4, dtype=torch.float64)  # a CPU tensor: gloo, no device sync even next to NCCL
        if self.is_main:
            message[0], message[1], message[2], message[3] = stop.requested(), pause.requested(), time_up, progress
        if self.shared is not None:
            message = self.shared.broadcast(message)
        else:
            dist.broadcast(message, src=0)
        flags = message.tolist()
        stop.agreed, pause.agreed, self.time_up = (bool(v) for v in flags[:3])
        return flags[3]

    # ------------------------------------------------------------------ the loop's hooks
    def rank_config(self, cfg):
        """The config this rank trains with: in a local group its share of each batch (the launcher picks a worker
        count that divides it), else the run's own (torchrun's convention: batch_size per rank)."""
        if not self.split_batch:
            return cfg
        return cfg.replace(batch_size=max(1, cfg.batch_size // self.world_size))

    def done(self, step: int, steps: int) -> bool:
        """The loop's done() under DDP: the step count (the same everywhere) or rank 0's clock, never a local one."""
        return bool(steps and step >= steps) or self.time_up

    def attach(self, gan, batches, notes: list[str]):
        """When a run is built: per-rank noise, this rank's shard of the data, SyncBatchNorm and DDP wrappers
        around the GAN's forward passes. Returns the batches this rank trains on; appends notes."""
        cfg = gan.cfg
        if not self.is_main:  # rank 0 keeps the run's own stream (as a lone run); same generator object, reseeded
            gan.rng.manual_seed(derived_seed(cfg.seed, "rank", self.rank))
        if isinstance(batches, ImageBatches):  # 2-D point sets are distributions: per-rank noise is enough
            batches = ShardedBatches(batches.data, derived_seed(cfg.seed, "order", 0), self.rank, self.world_size)
        if gan.device.type == "cpu":  # no idle core for DDP's overlap to use: one flat all-reduce per net instead
            self.share_weights(gan)
            if self.split_batch and all(p.dtype == torch.float32 for net in (gan.G, gan.D) for p in net.parameters()):
                widest = max([m.num_features for net in (gan.G, gan.D) for m in net.modules()
                              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)], default=0)
                self.shared = SharedMean.open(self, max(count_params(gan.G), count_params(gan.D), 3 * widest))
            gan.average_grads = self.average_grads
        notes += self._share_batchnorm(gan) if self.shared is not None else \
            sync_batchnorm(cfg, gan.loss, gan.device, gan.G, gan.D)
        if gan.device.type != "cpu":
            kwargs = {"device_ids": [gan.device.index] if gan.device.type == "cuda" else None, **NO_BUFFER_SYNC}
            gan.G_fwd = FreezableDDP(gan.G_fwd, **kwargs)
            gan.D_fwd = FreezableDDP(gan.D_fwd, **kwargs)
        if self.split_batch:
            notes.append(f"{self.world_size} worker processes share each batch of {cfg.batch_size * self.world_size} "
                         f"({cfg.batch_size} each, one CPU thread or more each); live evaluation in the first only")
        else:
            notes.append(f"DDP: {self.world_size} ranks ({self.backend}); batch {cfg.batch_size} per rank = "
                         f"{cfg.batch_size * self.world_size} images per step; live evaluation on rank 0 only")
        return batches

    def _share_batchnorm(self, gan) -> list[str]:
        """A local group keeps the recipe's BatchNorm: over the whole batch, not each worker's share (G; D too
        unless a gradient penalty differentiates it twice, which SharedBatchNorm does not)."""
        twice = penalised_twice(gan.cfg, gan.loss)
        nets = [gan.G] if twice else [gan.G, gan.D]
        notes = []
        if sum(share_batchnorm(net, self.shared) for net in nets):
            notes.append("BatchNorm normalises over the whole batch, across the worker processes")
        if twice and has_batchnorm(gan.D):
            notes.append("D's BatchNorm normalises over each worker's share of the batch: its gradient penalty needs a "
                         "second derivative that the whole-batch BatchNorm does not have")
        return notes

    def begin(self, gan, batches, step: int, record) -> "RankRecord":
        """When the loop starts: fresh per-rank streams after a resume (the checkpoint restored rank 0's stream on
        every rank), the device in the run's status, and the record this rank writes through."""
        cfg = gan.cfg
        if gan.device.type == "cuda":
            torch.cuda.set_device(gan.device)  # the current GPU is per thread: this is the trainer's
        if step:
            if not self.is_main:
                gan.rng.manual_seed(derived_seed(cfg.seed, "rank", self.rank, "step", step))
            if isinstance(batches, ShardedBatches):
                batches.restart(derived_seed(cfg.seed, "order", step))
        inner = record if self.is_main else None
        if inner is not None:
            with contextlib.suppress(OSError):  # a full disk is reported by the loop's first write
                inner.set_status(device=f"{device_label(gan.device)} × {self.world_size} ranks (DDP)",
                                 world_size=self.world_size)
        return RankRecord(self, gan, inner)


def init_from_env(store=None) -> Context:
    """init_process_group from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR/PORT, LOCAL_RANK), or with
    `store`, rank 0's own TCPStore (start_local_group). NCCL carries CUDA tensors and gloo CPU ones (control
    messages, CPU training)."""
    global _current
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    backend = "gloo"
    if torch.cuda.is_available():
        backend = "cpu:gloo,cuda:nccl"
        if local_rank < torch.cuda.device_count():
            torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        if store is not None:
            store = dist.PrefixStore("default_pg", store)  # what env:// adds: the helper ranks look there
            dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world)
        else:
            dist.init_process_group(backend=backend)
    _current = Context(rank, world, local_rank, backend, split_batch=os.environ.get(SPLIT_ENV) == "1")
    if os.environ.get(PARENT_ENV):
        watch_parent(int(os.environ[PARENT_ENV]))
    return _current


def start_local_group(workers: int, argv: list[str]):
    """Make this process rank 0 of `workers` CPU processes on this machine that share each batch of one run, and
    start the others (`python -m gan_core <argv>` again). Returns (rank 0's TCPStore, the helper processes); the
    caller then trains as rank 0 (init_from_env(store)) and ends the helpers with end_local_group."""
    import subprocess
    import sys
    store = dist.TCPStore("127.0.0.1", 0, workers, is_master=True, wait_for_workers=False)  # a free port, no race
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "WORLD_SIZE": str(workers), "LOCAL_WORLD_SIZE": str(workers), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(store.port), SPLIT_ENV: "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    helpers = []
    for rank in range(1, workers):
        # Own session: a Ctrl-C reaches rank 0 only, which stops every rank at the same step (agree()).
        helpers.append(subprocess.Popen([sys.executable, "-m", "gan_core", *argv], start_new_session=True,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank),
                                             PARENT_ENV: str(os.getpid())}))
    os.environ.update({k: env[k] for k in ("WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", SPLIT_ENV)})
    os.environ.update(RANK="0", LOCAL_RANK="0")
    return store, helpers


def end_local_group(helpers, timeout: float = 30.0) -> None:
    """Wait for the helper ranks to leave (they end with the run), killing any that do not, and forget the group's
    environment so this process no longer looks launched."""
    import subprocess
    for proc in helpers:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for name in TORCHRUN_ENV + ("LOCAL_RANK", "LOCAL_WORLD_SIZE", SPLIT_ENV):
        os.environ.pop(name, None)


def watch_parent(parent: int, every: float = 1.0) -> None:
    """A helper rank ends as soon as rank 0's process is gone (killed, crashed), not after gloo's 30-min timeout."""
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="gan-group-parent", daemon=True).start()


def shutdown() -> None:
    global _current
    if dist.is_initialized():
        dist.destroy_process_group()
    _current = None


def local_device(device: torch.device) -> torch.device:
    """Under DDP each rank trains on its own GPU, cuda:LOCAL_RANK; alone, or on a CPU, nothing changes."""
    ctx = _current
    if ctx is None:
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if ctx.local_rank >= count:
            raise ValueError(f"device: LOCAL_RANK {ctx.local_rank} has no GPU of its own ({count} visible here); "
                             f"start at most {count} processes per node (--nproc_per_node)")
        return torch.device("cuda", ctx.local_rank)
    if device.type == "mps":
        raise ValueError("device: Apple MPS cannot train across processes; use cpu or cuda under torchrun")
    return device


# ---------------------------------------------------------------------- pieces a DDP run trains with
def penalised_twice(cfg, loss: Loss) -> bool:
    """A gradient penalty (WGAN-GP, R1) differentiates D twice, which neither SyncBatchNorm nor SharedBatchNorm can."""
    return bool(loss.gradient_penalty or cfg.r1_gamma)


class AgreedFlag:
    """Stands in for a threading.Event under DDP: set()/clear() record this process's request (the dashboard's
    control.json, Ctrl-C), is_set() answers what rank 0 last broadcast, so every rank acts at the same step."""

    def __init__(self):
        self._requested = False
        self.agreed = False

    def set(self) -> None:
        self._requested = True

    def clear(self) -> None:
        self._requested = False

    def requested(self) -> bool:
        return self._requested

    def is_set(self) -> bool:
        return self.agreed


class ShardedBatches:
    """This rank's slice of every global batch. All ranks shuffle with one shared stream, so within an epoch no
    two ranks see the same image (like torch's DistributedSampler); indexing stays on the device."""

    def __init__(self, data: ImageData, seed: int, rank: int, world_size: int):
        self.data, self.rank, self.world_size = data, rank, world_size
        self.restart(seed)

    def restart(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)  # on the CPU: the same permutation on any GPU model
        self.order = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def sample(self, batch_size: int):
        n, need = self.data.images.shape[0], batch_size * self.world_size
        if self.pos + need > self.order.numel():  # a new epoch: one shuffle, one copy to the device
            order = torch.randperm(n, generator=self.generator) if need <= n else \
                torch.randint(n, (need,), generator=self.generator)  # tiny folders: with replacement
            self.order, self.pos = order.to(self.data.images.device), 0
        start = self.pos + self.rank * batch_size
        idx = self.order[start:start + batch_size]
        self.pos += need
        labels = None if self.data.labels is None else self.data.labels[idx]
        return to_unit_range(self.data.images[idx]), labels


# No buffer broadcast before every forward: D runs 2-3 forwards per step, and BatchNorm statistics stay per rank
# (rank 0's are checkpointed). Weights stay identical anyway: every rank applies the same averaged gradients.
# (newer torch calls broadcast_buffers forward_sync_buffers and warns about the old name.)
NO_BUFFER_SYNC = {"forward_sync_buffers": False} if "forward_sync_buffers" in \
    inspect.signature(DistributedDataParallel.__init__).parameters else {"broadcast_buffers": False}


class FreezableDDP(DistributedDataParallel):
    """DDP that steps aside while its module's weights are frozen (G's update sets D.requires_grad_(False)):
    there is nothing to all-reduce then, and a DDP forward would leave the reducer waiting for gradients."""

    def __init__(self, module: torch.nn.Module, **kwargs):
        super().__init__(module, **kwargs)
        self._probe = (next(module.parameters()),)  # a tuple: nn.Module would register a bare Parameter

    def forward(self, *inputs, **kwargs):
        if not self._probe[0].requires_grad:
            return self.module(*inputs, **kwargs)
        return super().forward(*inputs, **kwargs)


def sync_batchnorm(cfg, loss: Loss, device: torch.device, G: torch.nn.Module, D: torch.nn.Module) -> list[str]:
    """Turn BatchNorm into SyncBatchNorm in place (the same Parameter objects, so optimisers stay valid) where
    `sync_bn` asks and it can work. Returns notes for the run's events."""
    if not cfg.sync_bn or not (has_batchnorm(G) or has_batchnorm(D)):
        return []
    if device.type != "cuda":
        return ["sync_bn: SyncBatchNorm needs CUDA GPUs; on this device each rank normalises over its own batch"]
    notes = []
    nets = [G]
    if has_batchnorm(D) and penalised_twice(cfg, loss):
        notes.append("sync_bn: D keeps per-rank BatchNorm, because its gradient penalty needs a second derivative "
                     "that SyncBatchNorm does not have")
    else:
        nets.append(D)
    for net in nets:
        if torch.nn.SyncBatchNorm.convert_sync_batchnorm(net) is not net:  # pragma: no cover - G/D are wrappers
            raise RuntimeError("convert_sync_batchnorm replaced the network itself")
    return notes


class RankRecord:
    """The run record as one rank sees it: rank 0 writes through to the real RunRecord, the other ranks write
    nothing. It remembers the last status, for the test-only weights dump at release."""

    def __init__(self, ctx: Context, gan, inner=None):
        self.ctx, self.gan, self.inner = ctx, gan, inner
        self.run_id = inner.run_id if inner is not None else ""
        self.dir = inner.dir if inner is not None else None
        self.status = {"step": 0, "status": "running"}

    def set_status(self, **changes) -> None:
        self.status.update({k: v for k, v in changes.items() if k in ("step", "status")})
        if self.inner is not None:
            self.inner.set_status(**changes)

    def heartbeat(self, step: int, elapsed: float) -> None:
        if self.inner is not None:
            self.inner.heartbeat(step, elapsed)

    def note(self, message: str) -> None:
        if self.inner is not None:
            self.inner.note(message)

    def add_metrics(self, rows: list[dict]) -> None:
        if self.inner is None:
            return
        for row in rows:  # losses arrive averaged over ranks (read_metrics); the rate counted one rank's images
            if row.get("images_per_s") is not None:
                row["images_per_s"] *= self.ctx.world_size
        self.inner.add_metrics(rows)

    def add_grid(self, step: int, image) -> None:
        if self.inner is not None:
            self.inner.add_grid(step, image)

    def grid_steps(self) -> list[int]:
        return self.inner.grid_steps() if self.inner is not None else []

    def checkpoint_path(self, step: int):
        return self.inner.checkpoint_path(step) if self.inner is not None else None

    def checkpoint_saved(self, step: int, path) -> None:
        if self.inner is not None:
            self.inner.checkpoint_saved(step, path)

    def poll_control(self, controls) -> None:
        if self.inner is not None:
            self.inner.poll_control(controls)  # rank 0 reads control.json into its requests; the loop then agrees

    def evaluation(self) -> dict | None:
        return self.inner.evaluation() if self.inner is not None else None

    def save_evaluation(self, data: dict) -> None:
        if self.inner is not None:
            self.inner.save_evaluation(data)

    def release(self) -> None:
        dump_weights(self.ctx, self.gan, self.status["step"], self.status["status"])
        if self.inner is not None:
            self.inner.release()


def dump_weights(ctx: Context, gan, step: int, status: str) -> None:
    """Tests only ($GAN_STUDIO_DDP_WEIGHTS_DUMP): this rank's final weights and random state, to compare ranks."""
    folder = os.environ.get(DUMP_ENV)
    if not folder:
        return
    from safetensors.torch import save_file
    nets = {"G": gan.G, "D": gan.D, **({"G_ema": gan.G_ema} if gan.G_ema is not None else {})}
    tensors = {f"{prefix}.{name}": p.detach().cpu().contiguous().clone()
               for prefix, net in nets.items() for name, p in net.named_parameters()}
    tensors["rng_state"] = gan.rng.get_state().cpu()
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, f"rank{ctx.rank}.safetensors"),
              metadata={"step": str(step), "status": status})
