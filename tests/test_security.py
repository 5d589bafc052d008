"""Security defaults a user relies on without reading the code: the server is local-only with XSRF protection
and capped uploads, no file is ever unpickled, and run names cannot reach outside the runs folder."""
from __future__ import annotations

import re

import pytest
import tomllib
from conftest import REPO
from streamlit.testing.v1 import AppTest
from test_app import APP, runs_root, start_button  # noqa: F401 (runs_root is a fixture)
from gan_core import cli
from gan_core.config import ConfigError
from gan_core.runs import files as rf

SOURCES = sorted(p for folder in ("gan_core", "pages", "ui", "benchmarks") for p in (REPO / folder).rglob("*.py")) + \
    [REPO / "app.py"]


def test_streamlit_config_is_local_only_with_xsrf_and_capped_uploads():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server["address"] == "127.0.0.1"  # README "Exposing the server" explains how to open it deliberately
    assert server["enableXsrfProtection"] is True
    assert 1 <= server["maxUploadSize"] <= 200  # MB; a config.json or points CSV is kilobytes
    assert server.get("enableCORS", True) is True
    assert config["browser"]["gatherUsageStats"] is False


def test_the_readme_says_how_to_expose_the_server_and_what_it_risks():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Exposing the server", 1)[1].split("\n## ", 1)[0]
    assert "--server.address 0.0.0.0" in section and "no authentication" in section.lower()


# Each pattern loads Python objects from bytes (arbitrary code on load) unless proven safe.
UNPICKLING = [r"\bpickle\.loads?\(", r"\bimport pickle\b", r"\bdill\b", r"\bjoblib\.load\(", r"\bshelve\.open\(",
              r"\bmarshal\.loads?\(", r"\btorch\.jit\.load\(", r"allow_pickle\s*=\s*True", r"\byaml\.load\(",
              r"\.from_pretrained\("]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_nothing_is_ever_unpickled(path):
    text = path.read_text()
    for pattern in UNPICKLING:
        assert not re.search(pattern, text), f"{path.name}: {pattern}"
    for call in re.finditer(r"\btorch\.load\(", text):  # only with weights_only=True, in the same call
        args = text[call.end(): text.find(")", call.end()) + 1]
        assert "weights_only=True" in args, f"{path.name}: torch.load without weights_only=True"
    for call in re.finditer(r"\bnp\.load\(", text):
        args = text[call.end(): text.find(")", call.end()) + 1]
        assert "allow_pickle=True" not in args


def test_the_source_scan_sees_the_library():
    names = {p.name for p in SOURCES}
    assert {"checkpoint.py", "store.py", "trainer.py", "cli.py", "app.py"} <= names


BAD_NAMES = ["../x", "..", "a/b", "/etc/passwd", "a\\b", "x/../../y", "a..b", ".hidden", "-rf", "x" * 49, "a b", "nul\0",
             "ü", "$(id)"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_run_names_that_could_escape_or_confuse_are_refused(name, tiny_config, store, tmp_path, capsys):
    with pytest.raises(ConfigError) as e:
        store.start(tiny_config(steps=1).to_dict() | {"name": name})
    assert set(e.value.problems) == {"name"}
    try:
        code = cli.main(["train", "--name", name, "--out", str(store.root)])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--name" in err
    assert list(store.root.iterdir()) == [] and list(tmp_path.iterdir()) == [store.root]


def test_a_name_at_the_limit_makes_a_folder_inside_the_runs_folder(tiny_config, store):
    name = "a." + "b-" * 22 + "bc"  # 48 characters, single dots
    assert len(name) == 48
    run_id = store.start(tiny_config(dataset="ring-8", steps=1, name=name))
    assert store.wait(run_id, 120) == "finished"
    assert rf.is_valid_run_id(run_id) and store.run_dir(run_id).parent == store.root
    assert run_id.split("-", 2)[2] == name[:40]  # <timestamp>-<name, shortened for the folder>
    assert [r["run_id"] for r in store.runs()] == [run_id] and store.runs()[0]["name"] == name


# ---------------------------------------------------------------------- export-script: config strings are literals
HOSTILE_STRINGS = ['""" + open({marker!r}, "w").close() + """', "\\N{{NOPE}} \\x \\", "a\u2028open({marker!r}, 'w')",
                   "'" * 3 + "\\'; open({marker!r}, 'w') #", "a\u2029b\x85c\rd"]


@pytest.mark.parametrize("hostile", HOSTILE_STRINGS)
def test_export_script_keeps_every_config_string_a_literal_and_runs_nothing(hostile, tmp_path, monkeypatch, capsys):
    import ast
    import runpy
    import sys

    from gan_core.runs.export import ExportError, export_script as export_run
    from gan_core.presets import build_config
    marker = tmp_path / "pwned"
    text = hostile.format(marker=str(marker))
    folder = tmp_path / "run"
    folder.mkdir()
    config = build_config(dataset="ring-8").to_dict() | {"preset": text, "data_root": text}
    (folder / "config.json").write_text(__import__("json").dumps(config))
    if "\r" in text:  # control characters (\r, \n, NEL...) are refused where a config is read, in one line
        with pytest.raises(ExportError, match="control characters"):
            export_run(folder)
        return
    script = export_run(folder)
    tree = ast.parse(script)  # compiles (the old docstring copy raised SyntaxError or broke out)
    literals = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    assert text in literals  # the string survives exactly, as data
    path = tmp_path / "my_gan.py"
    path.write_text(script)
    monkeypatch.setattr(sys, "argv", [str(path), "--steps", "0", "--device", "cpu", "--out", str(tmp_path / "s.png")])
    runpy.run_path(str(path), run_name="__main__")
    assert not marker.exists()


# ---------------------------------------------------------------------- CLI restore: inputs checked before any work
def _restore(tmp_path, capsys, *argv):
    code = cli.main(["restore", str(tmp_path), "--task", "inpaint", *argv, "-o", str(tmp_path / "out.npy")])
    return code, capsys.readouterr().err


def test_a_tiny_npy_claiming_a_huge_array_is_refused_from_its_header(tmp_path, capsys):
    import numpy as np
    lie = tmp_path / "lie.npy"
    with open(lie, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 1, 28, 28)})
        f.write(b"\0" * 64)
    assert lie.stat().st_size < 300
    code, err = _restore(tmp_path, capsys, "--input", str(lie), "--mask", "centre")  # the old code: MemoryError, exit 1
    assert code == 2 and err.count("\n") == 1 and "(1000000000000, 1, 28, 28)" in err and "limit" in err
    short = tmp_path / "short.npy"  # a header promising more data than the file holds
    with open(short, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (4, 1, 28, 28)})
    code, err = _restore(tmp_path, capsys, "--input", str(short), "--mask", "centre")
    assert code == 2 and err.count("\n") == 1 and "holds 0" in err


def test_cli_restore_refuses_a_mask_that_hides_nothing(tmp_path, capsys):
    import numpy as np
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 28, 28), np.float32))
    np.save(tmp_path / "ones.npy", np.ones((2, 1, 28, 28), np.float32))
    code, err = _restore(tmp_path, capsys, "--input", str(tmp_path / "x.npy"), "--mask", str(tmp_path / "ones.npy"))
    assert code == 2 and err.count("\n") == 1 and "hides no pixel" in err  # the old code went on to load the run


# ---------------------------------------------------------------------- teacher login: one backoff for the server
@pytest.fixture
def login(monkeypatch):
    """The server-wide throttle on a clock the test moves; reset before and after."""
    from gan_core import classroom
    now = [1000.0]
    classroom.LOGIN.reset()
    monkeypatch.setattr(classroom.LOGIN, "clock", lambda: now[0])
    monkeypatch.setenv("GAN_STUDIO_TEACHER_PASSWORD", "correct horse")
    yield now
    classroom.LOGIN.reset()


def test_wrong_passwords_from_many_sessions_share_one_backoff_and_log_one_line_each(login, caplog):
    from gan_core.classroom import LOGIN
    caplog.set_level("WARNING", logger="gan_studio.login")
    results = [LOGIN.attempt(f"guess-{i}", "correct horse", who=f"session {i}") for i in range(6)]  # 6 sessions at once
    assert [ok for ok, _ in results] == [False] * 6
    assert results[2][1] == 1.0 and results[3][1] == pytest.approx(1.0)  # the 4th and later wait, unchecked
    assert LOGIN.attempt("correct horse", "correct horse") == (False, pytest.approx(1.0))  # even the right one, now
    login[0] += 1.0
    assert LOGIN.attempt("correct horse", "correct horse") == (True, 0.0)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 7 and all("guess-" not in line and "correct horse" not in line for line in lines)


def test_a_second_session_cannot_skip_the_backoff_another_session_earned(login, runs_root):
    for guess in ("a", "b", "c"):  # three sessions, one wrong guess each: the server now waits a second
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.text_input(key="roles_guess").input(guess).run()
    fresh = AppTest.from_file(str(APP), default_timeout=60).run()
    fresh.text_input(key="roles_guess").input("correct horse").run()  # the old per-session delay let this through
    assert start_button(fresh).disabled and fresh.session_state["roles_wait"] == pytest.approx(1.0)
    login[0] += 1.0
    teacher = AppTest.from_file(str(APP), default_timeout=60).run()
    teacher.text_input(key="roles_guess").input("correct horse").run()
    assert not start_button(teacher).disabled


# ---------------------------------------------------------------------- classroom viewers: no uploads, no server paths
def _viewer(page, query=None):
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page(page)
    at.query_params.update(query or {})
    return at.run()


def test_a_viewer_gets_no_uploader_and_no_server_path(runs_root, tiny_config, monkeypatch):
    from ui.state import get_store
    monkeypatch.setenv("GAN_STUDIO_TEACHER_PASSWORD", "correct horse")
    store = get_store()
    run_id = store.start(tiny_config(steps=2, tensorboard=False, data_root=str(runs_root.parent / "secret-data")))
    assert store.wait(run_id, 120) == "finished"
    for page in ("pages/train.py", "pages/playground.py"):
        at = _viewer(page)
        assert not at.exception and not at.get("file_uploader"), page  # the old pages offered one to every viewer
    restore = _viewer("pages/restore.py", {"run": run_id})
    assert not restore.get("file_uploader")
    assert all("a picture" not in str(g.proto.options) for g in restore.get("button_group"))
    monitor = _viewer("pages/monitor.py", {"run": run_id})
    shown = " ".join([t.value for t in monitor.text] + [j.proto.body for j in monitor.get("json")])
    assert run_id in shown and str(runs_root) not in shown and "secret-data" not in shown
    monkeypatch.delenv("GAN_STUDIO_TEACHER_PASSWORD")  # the local user (no classroom) still sees where the run is
    assert str(runs_root) in " ".join(t.value for t in _viewer("pages/monitor.py", {"run": run_id}).text)


# ---------------------------------------------------------------------- GAN-prior searches: one at a time per server
def test_prior_searches_from_many_sessions_run_one_at_a_time_and_the_rest_are_told_they_wait(monkeypatch):
    import threading

    from gan_core.restore import prior
    inside, most, notes = [0], [0], []
    lock, first_in, release = threading.Lock(), threading.Event(), threading.Event()

    def search(*args):  # stands in for the real search: counts how many run at once
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        first_in.set()
        release.wait(60)
        with lock:
            inside[0] -= 1
        return "done"
    monkeypatch.setattr(prior, "_prior_search", search)
    results = []
    first = threading.Thread(target=lambda: results.append(prior.prior_search(None, "gaussian", "inpaint", None)))
    first.start()  # one search runs...
    assert first_in.wait(60)
    queued = threading.Event()

    def waiting(ahead):
        notes.append(ahead)
        queued.set()

    def restore_click():
        results.append(prior.prior_search(None, "gaussian", "inpaint", None))

    def restore_click_with_a_note():  # as the Restore page: its turn around the whole restore, with a note
        with prior.SEARCHES.turn(on_wait=waiting):
            results.append(prior.prior_search(None, "gaussian", "inpaint", None))
    others = [threading.Thread(target=restore_click) for _ in range(3)]
    with_note = threading.Thread(target=restore_click_with_a_note)
    for t in others:
        t.start()
    with_note.start()
    assert queued.wait(60) and notes[0] >= 1  # told how many searches are ahead of it
    release.set()
    for t in [first, *others, with_note]:
        t.join(120)
    assert results.count("done") == 5 and most[0] == 1  # the old code ran all five at once


# ---------------------------------------------------------------------- the playground: one training budget for all
def test_playground_training_time_is_shared_by_every_session():
    from gan_core.playground.budget import TrainingBudget
    now = [0.0]
    budget = TrainingBudget(per_second=0.5, burst=0.6, clock=lambda: now[0])
    granted = [budget.take(0.6) for _ in range(10)]  # ten viewers' redraws at the same moment
    assert sum(granted) == pytest.approx(0.6) and granted[0] == pytest.approx(0.6)
    now[0] += 1.0
    assert sum(budget.take(0.6) for _ in range(10)) == pytest.approx(0.5)  # half a core a second, however many
    budget.give_back(0.3)  # a session that stopped early returns what it did not use
    assert budget.take(0.6) == pytest.approx(0.3)


def test_the_playground_page_trains_within_the_shared_budget(runs_root, monkeypatch):
    from gan_core.playground import budget
    taken = []
    real = budget.SHARED_TRAINING.take
    monkeypatch.setattr(budget.SHARED_TRAINING, "take", lambda want: taken.append(want) or real(want))
    at = AppTest.from_file(str(REPO / "pages" / "playground.py"), default_timeout=120).run()
    if not at.session_state["pg_playing"]:
        at.button(key="pg_play").click().run()
    assert not at.exception and at.session_state["pg_playing"]
    assert taken, "the page trained without asking the server-wide budget"  # the old page never asked
