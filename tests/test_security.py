"""Security defaults a user relies on without reading the code: the server is local-only with XSRF protection
and capped uploads, no file is ever unpickled, and run names cannot reach outside the runs folder."""
from __future__ import annotations

import re

import pytest
import tomllib
from conftest import REPO

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
