"""Reliability through gan_core and the CLI: bad input, faults inside training, kill -9 and resume, many start/stop
cycles and concurrent runs. Every refusal is one line naming the field or the file with exit code 2; no thread is
left running, no other run is disturbed, nothing on disk is damaged or half-made.

(The dashboard side is in the page tests; single faults already covered elsewhere — an exception in a hook,
NaN weights at a logging step, 20 start/stop cycles — live in test_trainer.py.)"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from conftest import REPO, TINY, gan_threads
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from gan_core import RunStore, build_config, cli, data, safe_io
from gan_core.config import RunConfig, field_choices
from gan_core.engine import checkpoint
from gan_core.runs import files as rf

WAIT = 120  # seconds; only a hang ever waits this long
TINY_FLAGS = ["--g-features", "8", "--d-features", "8", "--g-hidden", "8", "--d-hidden", "8", "--batch-size", "8",
              "--grid-size", "10", "--log-every", "1", "--eval-every", "0", "--device", "cpu", "--quiet"]


# ---------------------------------------------------------------------- helpers
def run_cli(argv, capsys):
    """cli.main in-process: (exit code, stdout, stderr); argparse's own errors exit through SystemExit."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def folder_state(root: Path) -> dict[str, str]:
    """Every file under root → sha256 of its bytes: equal states mean nothing was added, removed or changed."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def assert_refused(code, out, err, *names):
    assert code == 2, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err  # exactly one line
    for name in names:
        assert name in err, (name, err)
    assert gan_threads() == []


def metric_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in rf.parse_csv_text((run_dir / "metrics.csv").read_text(), rf.METRIC_COLUMNS)]


def newest_checkpoint(run_dir: Path) -> Path:
    return rf.list_checkpoints(run_dir)[-1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two finished runs made once: a 2-D ring run (checkpoints at 2 and 4) and an MLP image run (another arch)."""
    root = tmp_path_factory.mktemp("finished") / "runs"
    store = RunStore(root)
    ring = store.start(build_config(**{**TINY, "dataset": "ring-8", "g_hidden": [8], "d_hidden": [8], "steps": 4,
                                       "checkpoint_every": 2, "sample_every": 2, "grid_size": 10}))
    mlp = store.start(build_config(**{**TINY, "arch": "mlp", "steps": 2, "grid_size": 10}))
    assert store.wait(ring, WAIT) == "finished" and store.wait(mlp, WAIT) == "finished"
    return store.run_dir(ring), store.run_dir(mlp)


@pytest.fixture
def runs(tmp_path, finished):
    """A runs folder holding a copy of the finished ring run, and that folder's state to compare against."""
    root = tmp_path / "runs"
    run_dir = root / finished[0].name
    shutil.copytree(finished[0], run_dir)
    return root, run_dir


# ---------------------------------------------------------------------- bad values, generated from RunConfig metadata
def bad_values(f) -> list[list[str]]:
    """Flag arguments that must be refused for field `f`, derived from its type, range and choices."""
    flag = "--" + f.name.replace("_", "-")
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    meta, choices = f.metadata, field_choices(f.name)
    values: list[str] = []
    if kind == "bool":
        return [[f"{flag}=maybe"]]  # a switch takes no value
    if choices is not None:
        values += ["not-a-choice", ""]
    elif kind in ("int", "float"):
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None:  # just outside the range
            values.append(repr(lo) if meta.get("min_exclusive") else repr(lo - 1 if kind == "int" else lo - 0.5))
        if hi is not None:
            values.append(repr(hi + 1 if kind == "int" else hi * 2 + 1))
        values += ["nan", "inf", "-inf", "1e999", "", "abc", "0x10"]
        if kind == "int":
            values.append("1.5")
    elif kind == "list":
        values += ["", "abc", "8,x", "0", "-3", str(meta["item_max"] + 1), ",".join(["8"] * (meta["max_len"] + 1))]
    elif f.name == "name":
        values += ["../x", "a/b", "..", "a..b", ".hidden", "-x", "a\\b", "x" * 49, "a b", "ü", "x;rm -rf"]
    return [[flag, v] for v in values]


FREE_TEXT = {"data_root": "any path is a valid setting; a missing folder is refused when loading (image-folder tests)",
             "preset": "not a flag: set by --preset, whose choices argparse checks"}
CASES = [(f.name, argv) for f in fields(RunConfig) for argv in bad_values(f)]


def test_every_field_has_generated_bad_values():
    covered = {name for name, _ in CASES}
    assert covered | set(FREE_TEXT) == {f.name for f in fields(RunConfig)}, "a new free-text field needs bad values here"
    assert len(CASES) > 200


@pytest.mark.parametrize("field, argv", CASES, ids=[f"{n}={a[-1][:12]}" for n, a in CASES])
def test_bad_value_is_one_line_naming_the_flag(field, argv, runs, capsys):
    root, _ = runs
    before = folder_state(root)
    code, out, err = run_cli(["train", *argv, "--out", root], capsys)
    assert_refused(code, out, err, "--" + field.replace("_", "-"))
    assert out == ""
    assert folder_state(root) == before  # no run folder made, the existing run untouched


def test_a_config_file_with_every_field_wrong_names_them_all(runs, tmp_path, capsys):
    root, _ = runs
    bad = {}
    for f in fields(RunConfig):
        for argv in bad_values(f):
            if len(argv) == 1:  # a switch: in a file it is a value like any other
                bad[f.name] = "maybe"
            elif argv[1]:
                bad[f.name] = argv[1]
                break
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    before = folder_state(root)
    code, out, err = run_cli(["train", "--config", tmp_path / "bad.json", "--out", root], capsys)
    assert_refused(code, out, err, *("--" + name.replace("_", "-") for name in bad))
    for text, name in [("{nope", "not valid JSON"), ("[1, 2]", "expected a JSON object"), ('{"lr_d": NaN}', "finite")]:
        (tmp_path / "bad.json").write_text(text)
        code, out, err = run_cli(["train", "--config", tmp_path / "bad.json", "--out", root], capsys)
        assert_refused(code, out, err, name)
    (tmp_path / "bad.json").write_bytes(os.urandom(300))
    code, out, err = run_cli(["train", "--config", tmp_path / "bad.json", "--out", root], capsys)
    assert_refused(code, out, err, "--config", "bad.json")
    assert folder_state(root) == before


COMBINATIONS = [
    (["--dataset", "ring-8", "--arch", "dcgan28"], "--arch"),
    (["--dataset", "mnist-embedded", "--arch", "mlp2d"], "--arch"),
    (["--dataset", "ring-8", "--conditional"], "--conditional"),
    (["--dataset", "image-folder", "--conditional"], "--conditional"),
    (["--arch", "dcgan32", "--image-size", "28"], "--image-size"),
    (["--arch", "mlp", "--image-size", "4"], "--image-size"),
    (["--dataset", "ring-8", "--channels", "3"], "--channels"),
    (["--arch", "dcgan28", "--batch-size", "1"], "--batch-size"),
    (["--steps", "0", "--max-seconds", "0"], "--steps"),
    (["--conditional", "--grid-size", "5"], "--grid-size"),
]


@pytest.mark.parametrize("argv, flag", COMBINATIONS, ids=[" ".join(a) for a, _ in COMBINATIONS])
def test_incompatible_combinations_are_one_line_naming_the_flag(argv, flag, runs, capsys):
    root, _ = runs
    before = folder_state(root)
    code, out, err = run_cli(["train", *argv, "--out", root], capsys)
    assert_refused(code, out, err, flag)
    assert folder_state(root) == before


# ---------------------------------------------------------------------- bad checkpoints, for --resume and sample
def _tensors(path: Path) -> tuple[dict, dict]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def _pickle_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"G.body.0.weight": torch.zeros(2)}, buf)
    return buf.getvalue()


def _damage(kind: str, path: Path, other: Path) -> None:
    """Turn the run's newest checkpoint into one kind of bad file (written in place, same name)."""
    good = path.read_bytes()
    raw = {"random": lambda: os.urandom(4000), "empty": lambda: b"", "truncated": lambda: good[: len(good) // 2],
           "cut-at-the-end": lambda: good[:-1], "header-lies": lambda: (10 ** 9).to_bytes(8, "little") + b"{}",
           "garbage-header": lambda: (17).to_bytes(8, "little") + b"{not json at all}",
           "pickle": _pickle_bytes, "other-architecture": lambda: newest_checkpoint(other).read_bytes()}
    if kind in raw:
        path.write_bytes(raw[kind]())
        return
    tensors, meta = _tensors(path)
    if kind == "foreign-safetensors":
        tensors, meta = {"weight": torch.zeros(3)}, {}
    elif kind == "mixed-architecture":  # this run's config, another architecture's weights
        tensors = _tensors(newest_checkpoint(other))[0]
    elif kind == "nan-weights":
        tensors = {k: v.fill_(float("nan")) if k.startswith("G.") and v.is_floating_point() else v for k, v in tensors.items()}
    elif kind == "no-step":
        meta.pop("step")
    elif kind == "bad-step":
        meta["step"] = "four"
    elif kind == "bad-optimizer-json":
        meta["opt_g_groups"] = "{"
    elif kind == "no-fixed-noise":
        tensors.pop("fixed_z")
    elif kind == "wrong-optimizer-state":
        tensors = {k: torch.zeros(3) if k.startswith("opt_d.0.exp_avg") else v for k, v in tensors.items()}
    elif kind == "bad-config":
        meta["config"] = "{broken"
    save_file(tensors, str(path), metadata=meta)


# (kind, sample refuses too): `sample` builds G from the checkpoint's own config and needs no optimiser state
CHECKPOINT_CASES = [("random", True), ("empty", True), ("truncated", True), ("cut-at-the-end", True),
                    ("header-lies", True), ("garbage-header", True), ("pickle", True), ("foreign-safetensors", True),
                    ("other-architecture", False), ("mixed-architecture", True), ("nan-weights", True),
                    ("no-step", False), ("bad-step", True), ("bad-optimizer-json", False), ("no-fixed-noise", False),
                    ("wrong-optimizer-state", False), ("bad-config", True)]


@pytest.mark.parametrize("kind, sample_refuses", CHECKPOINT_CASES, ids=[k for k, _ in CHECKPOINT_CASES])
def test_bad_checkpoint_is_refused_naming_the_file(kind, sample_refuses, runs, finished, tmp_path, capsys):
    root, run_dir = runs
    ckpt = newest_checkpoint(run_dir)
    _damage(kind, ckpt, finished[1])
    before = folder_state(root)
    code, out, err = run_cli(["train", "--resume", run_dir, "--steps", "9", "--quiet"], capsys)
    assert_refused(code, out, err, ckpt.name)
    assert folder_state(root) == before  # config, metrics, grids, checkpoints, no writer.lock: all as they were
    code, out, err = run_cli(["sample", run_dir, "-n", "4", "-o", tmp_path / "x.npy"], capsys)
    if sample_refuses:
        assert_refused(code, out, err, ckpt.name)
        assert not (tmp_path / "x.npy").exists()
    else:
        assert code == 0, err
    assert folder_state(root) == before


def test_oversized_and_pickle_checkpoints_are_refused_before_reading(runs, tmp_path, capsys, monkeypatch):
    root, run_dir = runs
    ckpt = newest_checkpoint(run_dir)
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", ckpt.stat().st_size - 1)
    before = folder_state(root)
    for argv in (["train", "--resume", run_dir, "--steps", "9"], ["sample", run_dir, "-o", tmp_path / "x.npy"]):
        code, out, err = run_cli(argv, capsys)
        assert_refused(code, out, err, ckpt.name, "larger than")
    monkeypatch.undo()
    (run_dir / "checkpoints" / "model.pth").write_bytes(_pickle_bytes())
    code, out, err = run_cli(["sample", run_dir, "--checkpoint", "model.pth", "-o", tmp_path / "x.npy"], capsys)
    assert_refused(code, out, err, "model.pth")
    (run_dir / "checkpoints" / "model.pth").unlink()
    assert folder_state(root) == before


@pytest.mark.parametrize("first_bytes", [b"\x80", b"PK"], ids=["0x80", "PK"])
def test_a_checkpoint_whose_header_length_looks_like_a_pickle_still_loads(first_bytes, runs, tmp_path):
    """A safetensors file starts with its 8-byte header length: 1 in 32 real checkpoints began with byte 0x80 and
    were refused as pickles. Only a file that is not also well-formed safetensors counts as a pickle or zip."""
    _, run_dir = runs
    tensors, meta = _tensors(newest_checkpoint(run_dir))
    path = tmp_path / "step_00000004.safetensors"
    modulus, target = 256 ** len(first_bytes), int.from_bytes(first_bytes, "little")

    def header_length(pad: int) -> int:
        save_file(tensors, str(path), metadata={**meta, "pad": "x" * pad})
        return int.from_bytes(path.read_bytes()[:8], "little")

    first = (target - header_length(0)) % modulus  # the header grows with the padding (rounded up to 8 bytes)
    assert any(header_length(pad) % modulus == target for pad in range(first - 8, first + 8) if pad >= 0)
    assert path.read_bytes().startswith(first_bytes)
    G, cfg, _ = checkpoint.load_generator(path)
    assert cfg.dataset == "ring-8"


# ---------------------------------------------------------------------- image folders and downloads
def _image_folder_cases(root: Path) -> dict[str, Path]:
    junk = root / "junk"
    (junk / "sub").mkdir(parents=True)
    (junk / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    (junk / "empty.jpg").write_bytes(b"")
    (junk / "notes.txt").write_text("not an image")
    (junk / "sub" / "fake.gif").write_bytes(os.urandom(500))
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 0, 0)).save(buf, "JPEG")
    (junk / "cut.jpg").write_bytes(buf.getvalue()[:60])  # a JPEG cut short
    (junk / "dir.png").mkdir()  # a folder with an image name
    (root / "empty").mkdir()
    return {"junk": junk, "empty": root / "empty", "missing": root / "missing"}


@pytest.mark.parametrize("case", ["junk", "empty", "missing", "oversized"])
def test_unusable_image_folder_is_one_line_naming_it(case, runs, tmp_path, capsys, monkeypatch):
    root, _ = runs
    folders = _image_folder_cases(tmp_path / "data")
    if case == "oversized":  # real images, each over the per-file caps (bytes, then pixels)
        folder = tmp_path / "data" / "big"
        folder.mkdir()
        Image.new("RGB", (64, 64), (0, 200, 0)).save(folder / "a.png")
        Image.new("RGB", (64, 64), (0, 0, 200)).save(folder / "b.bmp")  # uncompressed: the larger file
        monkeypatch.setattr(data, "MAX_IMAGE_FILE_BYTES", (folder / "b.bmp").stat().st_size - 1)
        monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 64 * 64 - 1)
    else:
        folder = folders[case]
    before = folder_state(root)
    code, out, err = run_cli(["train", "--dataset", "image-folder", "--data-root", folder, "--arch", "mlp", "--steps", "2",
                              *TINY_FLAGS, "--out", root], capsys)
    assert_refused(code, out, err, str(folder))
    if case == "oversized":
        assert "2 unreadable (2 larger than" in err
    assert folder_state(root) == before


def test_an_oversized_image_is_skipped_and_the_rest_train(store, tmp_path, tiny_config, monkeypatch):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (80 * i, 0, 0)).save(folder / f"{i}.png")
    Image.new("RGB", (600, 600), (0, 0, 0)).save(folder / "huge.png")
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 500 * 500)
    run_id = store.start(tiny_config(dataset="image-folder", data_root=str(folder), arch="mlp", image_size=8,
                                     channels=3, steps=2))
    assert store.wait(run_id, WAIT) == "finished"
    assert any("loaded 3 images" in e and "1 larger than" in e for e in store.snapshot(run_id).events)


class SilentServer:
    """A local TCP server that accepts connections and never answers: a network that swallows requests."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not, on Linux)
        self.sock.close()
        for c in self.conns:
            c.close()
        self.thread.join(WAIT)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now: connections are refused at once
    return port


@pytest.mark.parametrize("network", ["refused", "silent"])
def test_dataset_download_without_network_fails_fast_and_leaves_nothing(network, runs, tmp_path, capsys, monkeypatch):
    """torchvision gives urlopen no timeout; a silent network used to hang `train` forever (here: DNS fails at once,
    elsewhere a firewall may drop packets). Each wait is now bounded by data.DOWNLOAD_STALL_SECONDS."""
    root, _ = runs
    server = SilentServer() if network == "silent" else None
    port = server.port if server else _closed_port()
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [f"http://127.0.0.1:{port}/"])
    monkeypatch.setattr(data, "DOWNLOAD_STALL_SECONDS", 1.0)
    data_root = tmp_path / "no-data"
    before = folder_state(root)
    result = {}
    worker = threading.Thread(target=lambda: result.update(zip(
        ("code", "out", "err"), run_cli(["train", "--dataset", "mnist", "--data-root", data_root, "--out", root], capsys))))
    worker.start()
    worker.join(60)  # a hang guard, not a timing: a refused or silent mirror fails in about a second
    hung = worker.is_alive()
    if server:
        server.close()  # unblocks a hung download so the test can end
    worker.join(WAIT)
    assert not hung, "the download did not give up on a silent network"
    assert_refused(result["code"], result["out"], result["err"], "MNIST", str(data_root / "MNIST"), "mnist-embedded")
    assert not data_root.exists()  # no empty or half-downloaded folder left in the data root
    assert socket.getdefaulttimeout() is None  # the process-wide default is restored
    assert folder_state(root) == before


# ---------------------------------------------------------------------- bad input never disturbs a live run
def test_bad_input_while_a_run_trains_in_the_same_folder(store, tiny_config, tmp_path, capsys):
    at_6, go = threading.Event(), threading.Event()

    def hold_at_6(trainer):
        if trainer.step == 6:
            at_6.set()
            go.wait(WAIT)

    live = store.start(tiny_config(dataset="ring-8", steps=12, checkpoint_every=3, sample_every=3), hooks=[hold_at_6])
    assert at_6.wait(WAIT)
    root, run_dir = store.root, store.run_dir(live)
    try:
        for argv, name in [(["train", "--lr-d", "nan"], "--lr-d"), (["train", "--dataset", "ring-8", "--arch", "mlp"], "--arch"),
                           (["train", "--dataset", "image-folder", "--data-root", tmp_path / "nope"], "nope"),
                           (["train", "--resume", run_dir, "--steps", "20"], "already being trained"),
                           (["train", "--resume", root / "missing"], "missing")]:
            code, out, err = run_cli([*argv, *(["--out", root] if "--resume" not in argv else [])], capsys)
            assert code == 2 and err.count("\n") == 1 and name in err, (argv, err)
        assert [p.name for p in root.iterdir()] == [live]
        assert store.snapshot(live).status == "running" and store.trainer(live).step == 6
    finally:
        go.set()
    assert store.wait(live, WAIT) == "finished"
    assert metric_steps(run_dir) == list(range(1, 13))
    assert rf.list_grid_steps(run_dir) == [0, 3, 6, 9, 12]
    assert not (run_dir / "writer.lock").exists()


# ---------------------------------------------------------------------- faults inside a run
def test_exception_inside_a_training_step_fails_the_run_and_keeps_its_work(store, tiny_config):
    def break_the_data(trainer):
        if trainer.step == 3:
            def broken(batch_size):
                raise RuntimeError("injected: the data source broke")
            trainer.batches.sample = broken

    run_id = store.start(tiny_config(dataset="ring-8", steps=50), hooks=[break_the_data])
    assert store.wait(run_id, WAIT) == "failed"
    snap = store.snapshot(run_id)
    assert snap.message == "RuntimeError: injected: the data source broke" and snap.step == 3
    assert snap.checkpoints == ["step_00000003.safetensors"]
    assert store.resume(run_id) == "running"  # the Resume button carries on from it
    assert store.wait(run_id, WAIT) == "finished" and store.snapshot(run_id).step == 50


@pytest.fixture
def thread_errors(monkeypatch):
    """Exceptions that escape any thread (a thread that died instead of ending its run cleanly)."""
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


def full_disk_under(monkeypatch, folder_of, code=errno.ENOSPC):
    """Writes under the folder `folder_of()` returns fail with `code` while `state['full']`; other folders work.
    Tests run as root, where chmod does not stop writes, so the one way run files are opened (safe_io) is
    patched instead: every data write (status, config, metrics, grids, checkpoints, logs) goes through it."""
    state = {"full": False}
    real_open = safe_io._open_fd

    def open_fd(path, flags, inside):
        target = folder_of()
        if flags & os.O_WRONLY and state["full"] and target is not None and Path(target) in Path(path).parents:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, inside)

    monkeypatch.setattr(safe_io, "_open_fd", open_fd)
    return state


def test_disk_full_mid_run_stops_it_with_a_reason_and_resume_continues(store, tiny_config, monkeypatch, thread_errors):
    victim_dir = {}
    disk = full_disk_under(monkeypatch, lambda: victim_dir.get("path"))

    def fill_disk_at_5(trainer):
        if trainer.step == 5:
            disk["full"] = True

    neighbour = store.start(tiny_config(dataset="ring-8", steps=30, sample_every=2))
    victim = store.start(tiny_config(dataset="ring-8", steps=30, sample_every=2, checkpoint_every=4),
                         hooks=[fill_disk_at_5])
    victim_dir["path"] = store.run_dir(victim)
    assert store.wait(victim, WAIT) == "failed"
    run_dir = store.run_dir(victim)
    snap = store.snapshot(victim)  # reading works while the disk is still full
    assert snap.status == "failed" and snap.step in (5, 6)  # the status write of step 5 or the grid of step 6
    # the file is named relative to the runs folder: the message is shown to classroom viewers too
    assert snap.message.startswith(f"disk full: could not write {run_dir.name}/") and "No space left on device" in snap.message
    assert str(run_dir) not in snap.message
    assert f"training stopped at step {snap.step}" in snap.message and "Resume" in snap.message
    assert not snap.live_here and thread_errors == []  # the thread ended its run; nothing escaped it
    assert store.wait(neighbour, WAIT) == "finished" and store.snapshot(neighbour).step == 30
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / "writer.lock").exists()
    assert [p.name for p in rf.list_checkpoints(run_dir)] == ["step_00000004.safetensors"]

    disk["full"] = False  # space freed: the reason stays until the user resumes
    assert store.snapshot(victim).message == snap.message
    assert store.resume(victim) == "running"
    assert store.wait(victim, WAIT) == "finished"
    assert metric_steps(run_dir) == list(range(1, 31)) and thread_errors == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES], ids=["disk-full", "read-only"])
def test_unwritable_runs_folder_at_start_leaves_no_half_made_run(code, runs, monkeypatch, capsys):
    root, _ = runs
    full_disk_under(monkeypatch, lambda: root, code)["full"] = True
    before = folder_state(root)
    code_, out, err = run_cli(["train", "--dataset", "ring-8", "--steps", "3", *TINY_FLAGS, "--out", root], capsys)
    assert_refused(code_, out, err, "config.json", os.strerror(code))
    assert folder_state(root) == before and sorted(p.name for p in root.iterdir()) == [runs[1].name]


def test_disk_full_while_resuming_leaves_the_run_resumable(runs, monkeypatch, capsys):
    root, run_dir = runs
    disk = full_disk_under(monkeypatch, lambda: run_dir)
    disk["full"] = True
    before = folder_state(root)
    code, out, err = run_cli(["train", "--resume", run_dir, "--steps", "8", "--quiet"], capsys)
    assert_refused(code, out, err, "No space left on device")
    assert folder_state(root) == before  # not even a writer.lock held by this live process
    disk["full"] = False
    code, out, err = run_cli(["train", "--resume", run_dir, "--steps", "8", "--quiet"], capsys)
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["steps"] == 8 and metric_steps(run_dir) == list(range(1, 9))


# ---------------------------------------------------------------------- kill -9 and restart
def python_m(*args, cwd) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "gan_core", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition, what: str, proc: subprocess.Popen | None = None, deadline: float = WAIT):
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline or if proc dies."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the training process ended before {what}: {proc.stderr.read()}")
        threading.Event().wait(0.05)  # a polling interval, not a synchronisation
    pytest.fail(f"timed out waiting for {what}")


CKPT_EVERY, SAMPLE_EVERY = 40, 20


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A CLI run SIGKILLed a few steps after a checkpoint and after a grid that follows it: (run_dir, facts)."""
    root = tmp_path_factory.mktemp("killed") / "runs"
    # lr_decay 0: the resume below sets a new step budget, which would move a decaying schedule (on purpose)
    proc = python_m("train", "--dataset", "ring-8", "--steps", 1_000_000, "--checkpoint-every", CKPT_EVERY,
                    "--sample-every", SAMPLE_EVERY, "--lr-decay", 0, *TINY_FLAGS, "--out", root, cwd=root.parent)
    try:
        run_dir = wait_for(lambda: next(iter(root.glob("*/config.json")), None), "the run folder", proc).parent

        def past_a_checkpoint_and_a_grid():
            ckpts = rf.list_checkpoints(run_dir)
            steps = metric_steps(run_dir)
            if ckpts and steps:
                ckpt_step = int(ckpts[-1].stem[5:])
                return steps[-1] >= ckpt_step + SAMPLE_EVERY + 3 and (ckpt_step + SAMPLE_EVERY) in rf.list_grid_steps(run_dir)
            return False

        while True:  # freeze the process, then check the files again: what the kill sees is what was checked
            wait_for(past_a_checkpoint_and_a_grid, "a checkpoint, a grid after it and a few more steps", proc)
            proc.send_signal(signal.SIGSTOP)
            if past_a_checkpoint_and_a_grid():
                break
            proc.send_signal(signal.SIGCONT)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(WAIT)
        proc.stderr.close()
    ckpt = newest_checkpoint(run_dir)
    ckpt_step = int(ckpt.stem[5:])
    rows_before = (run_dir / "metrics.csv").read_text()
    with open(run_dir / "metrics.csv", "a") as f:  # a row the kill cut after its first digit: it reads as step 1
        f.write(str(metric_steps(run_dir)[-1] + 1)[0])
    cut = rf.checkpoint_path(run_dir, ckpt_step + CKPT_EVERY).with_suffix(".safetensors.tmp")
    cut.write_bytes(ckpt.read_bytes()[:100])  # and a checkpoint it cut short while saving
    facts = {"ckpt_step": ckpt_step, "last_step": metric_steps(run_dir)[-1], "rows_before": rows_before,
             "fixed_z": _tensors(ckpt)[0]["fixed_z"],
             "grid_after_ckpt": rf.load_png(rf.grid_path(run_dir, ckpt_step + SAMPLE_EVERY)),
             "grids_up_to_ckpt": {s: rf.grid_path(run_dir, s).read_bytes() for s in rf.list_grid_steps(run_dir)
                                  if s <= ckpt_step}}
    return run_dir, facts


@pytest.fixture
def killed_copy(killed_run, tmp_path):
    run_dir, facts = killed_run
    copy = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy, facts


def test_a_killed_run_is_readable_and_shows_as_interrupted(killed_copy, capsys):
    run_dir, facts = killed_copy
    assert 0 < facts["last_step"] - facts["ckpt_step"] <= CKPT_EVERY  # at most one checkpoint interval to lose
    store = RunStore(run_dir.parent)
    snap = store.snapshot(run_dir.name)
    assert snap.status == "interrupted" and "Resume" in snap.message
    assert snap.metrics["step"].tolist() == list(range(1, facts["last_step"] + 1))  # the cut row is not read
    assert snap.latest_grid is not None and snap.checkpoints
    code, out, err = run_cli(["list", "--out", run_dir.parent, "--json"], capsys)
    assert code == 0 and json.loads(out.splitlines()[0])["status"] == "interrupted"


def assert_continued(run_dir: Path, facts: dict, final_step: int):
    """Steps, curves, grids and fixed noise continue from the last checkpoint as if nothing had happened."""
    ckpt_step = facts["ckpt_step"]
    text = (run_dir / "metrics.csv").read_text()
    assert text.endswith("\n")
    steps = metric_steps(run_dir)
    assert steps == list(range(1, final_step + 1))  # log_every 1: no gap, no duplicate, no half row
    kept = facts["rows_before"].splitlines()[: ckpt_step + 1]  # header + rows up to the checkpoint, byte for byte
    assert text.splitlines()[: ckpt_step + 1] == kept
    for step, png in facts["grids_up_to_ckpt"].items():
        assert rf.grid_path(run_dir, step).read_bytes() == png
    # 2-D batches come from the saved random stream: the grid after the checkpoint is drawn again identically
    assert np.array_equal(rf.load_png(rf.grid_path(run_dir, ckpt_step + SAMPLE_EVERY)), facts["grid_after_ckpt"])
    assert torch.equal(_tensors(newest_checkpoint(run_dir))[0]["fixed_z"], facts["fixed_z"])
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / "writer.lock").exists()


def test_cli_resume_after_kill_continues_step_count_curves_and_noise(killed_copy, capsys):
    run_dir, facts = killed_copy
    final = facts["ckpt_step"] + CKPT_EVERY + 5
    code, out, err = run_cli(["train", "--resume", run_dir, "--steps", final, "--quiet"], capsys)
    assert code == 0, err
    result = json.loads(out.splitlines()[-1])
    assert result["status"] == "finished" and result["steps"] == final
    assert_continued(run_dir, facts, final)
    events = (run_dir / "events.log").read_text()
    assert f"resumed from step_{facts['ckpt_step']:08d}.safetensors at step {facts['ckpt_step']}" in events


def test_dashboard_resume_after_kill_continues(killed_copy):
    run_dir, facts = killed_copy
    store = RunStore(run_dir.parent)
    run_id = run_dir.name
    try:
        assert store.snapshot(run_id).status == "interrupted"
        assert store.resume(run_id) == "running"  # what the Resume button calls
        trainer = store.trainer(run_id)
        assert torch.equal(trainer.gan.fixed_z, facts["fixed_z"])
        target = facts["ckpt_step"] + SAMPLE_EVERY + 2
        wait_for(lambda: store.snapshot(run_id, max_points=2).step >= target, f"step {target}")
        store.stop(run_id)
        assert store.wait(run_id, WAIT) == "stopped"
        assert_continued(run_dir, facts, store.snapshot(run_id).step)
    finally:
        store.shutdown()


# ---------------------------------------------------------------------- lifecycle and load
def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_50_start_stop_cycles_of_every_ending_leak_nothing(store, tiny_config):
    """Stopped at once, stopped while paused, finished, failed, stopped before the first step; 10 of each."""
    cfg = tiny_config(dataset="ring-8", steps=100_000, g_hidden=[8], d_hidden=[8])

    def cycle(i: int) -> str:
        ending = ("stop", "pause-stop", "finish", "fail", "stop-at-once")[i % 5]
        started = threading.Event()

        def hook(trainer):
            started.set()
            if ending == "fail":
                raise RuntimeError("injected")

        run_id = store.start(cfg.replace(steps=3) if ending == "finish" else cfg, hooks=[hook])
        if ending == "stop-at-once":
            store.stop(run_id)
        else:
            assert started.wait(WAIT)
        if ending == "pause-stop":
            store.pause(run_id)
        if ending in ("stop", "pause-stop"):
            store.stop(run_id)
        expected = {"finish": "finished", "fail": "failed"}.get(ending, "stopped")
        assert store.wait(run_id, WAIT) == expected, (i, ending)
        return run_id

    cycle(0)  # warm-up: lazily opened libraries are not leaks
    threads_before, fds_before = set(threading.enumerate()), _fd_count()
    run_ids = [cycle(i) for i in range(50)]
    leaked = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert leaked == [] and gan_threads() == [] and store.live_runs() == []
    assert _fd_count() <= fds_before
    for run_id in run_ids:
        run_dir = store.run_dir(run_id)
        assert not (run_dir / "writer.lock").exists() and not list(run_dir.rglob("*.tmp"))
        assert json.loads((run_dir / "status.json").read_text())["status"] in ("stopped", "finished", "failed")


def test_three_runs_train_at_once_and_all_finish_complete(store, tiny_config):
    together = threading.Barrier(3)

    def meet_at_2(trainer):
        if trainer.step == 2:
            together.wait(WAIT)  # all three are mid-run at the same moment

    configs = [tiny_config(dataset="ring-8", steps=12, sample_every=4, checkpoint_every=6),
               tiny_config(arch="mlp", steps=12, sample_every=4, checkpoint_every=6),
               tiny_config(arch="dcgan28", steps=12, sample_every=4, checkpoint_every=6, ema=0.9)]
    run_ids = [store.start(cfg, hooks=[meet_at_2]) for cfg in configs]
    assert [store.wait(r, WAIT) for r in run_ids] == ["finished"] * 3
    for run_id, cfg in zip(run_ids, configs):
        run_dir = store.run_dir(run_id)
        assert RunConfig.from_json((run_dir / "config.json").read_text()) == cfg
        assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
        assert metric_steps(run_dir) == list(range(1, 13))
        assert rf.list_grid_steps(run_dir) == [0, 4, 8, 12]
        assert [p.name for p in rf.list_checkpoints(run_dir)] == ["step_00000006.safetensors", "step_00000012.safetensors"]
        G, saved, meta = checkpoint.load_generator(newest_checkpoint(run_dir))
        assert saved == cfg and meta["step"] == "12"
        assert not (run_dir / "writer.lock").exists() and not list(run_dir.rglob("*.tmp"))
