"""The installable package: the wheel holds the library, the dashboard, its config and the embedded MNIST, with
both console commands, and an installed copy works from any folder."""
import json
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

SOURCES = ["pyproject.toml", "README.md", "requirements.txt", "app.py", ".streamlit", "gan_core", "pages", "ui"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel --no-deps --no-build-isolation` of a copy of the checkout (the build leaves nothing in the repo)."""
    pytest.importorskip("setuptools", reason="the build backend is in requirements-dev.txt")
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (path,) = out.glob("gan_studio-*.whl")
    return path


def test_wheel_holds_library_dashboard_config_and_embedded_mnist(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in (REPO / "gan_core" / "assets").rglob("*"):  # the embedded MNIST and the reference traces
        if asset.is_file():
            assert asset.relative_to(REPO).as_posix() in names
    for path in [*REPO.glob("gan_core/**/*.py")]:
        assert path.relative_to(REPO).as_posix() in names, f"{path} is missing from the wheel (pyproject.toml packages)"
    for path in [REPO / "app.py", REPO / ".streamlit" / "config.toml", *REPO.glob("pages/*.py"), *REPO.glob("ui/*.py")]:
        assert f"gan_studio/{path.relative_to(REPO).as_posix()}" in names, f"{path} is missing from the wheel"


def test_wheel_declares_the_commands_extras_and_unpinned_torch(wheel):
    z = zipfile.ZipFile(wheel)
    info = next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")).rsplit("/", 1)[0]
    entry_points = z.read(f"{info}/entry_points.txt").decode()
    assert "gan-studio = gan_studio.ui.launch:main" in entry_points and "gan-core = gan_core.cli:main" in entry_points
    metadata = z.read(f"{info}/METADATA").decode().splitlines()
    requires = [line.split(":", 1)[1].split(";")[0].strip() for line in metadata if line.startswith("Requires-Dist:")]
    assert "torch>=2.4" in requires and not any("<" in r or "==" in r for r in requires)  # no upper pins
    assert {"tensorboard", "mlflow", "dev"} <= {line.split(":", 1)[1].strip() for line in metadata
                                                if line.startswith("Provides-Extra:")}


def test_installed_commands_work_from_any_folder(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    bin_dir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    python = bin_dir / Path(sys.executable).name
    see_this_environment(python)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    presets = subprocess.run([str(bin_dir / "gan-core"), "list", "--presets"], cwd=elsewhere, capture_output=True,
                             text=True, timeout=120)
    assert presets.returncode == 0 and presets.stdout.startswith("fast-mnist")
    bad = subprocess.run([str(bin_dir / "gan-core"), "trian"], cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "`gan-core --help`" in bad.stderr
    where = subprocess.run([str(python), "-c", "import json, gan_core; from gan_studio.ui.launch import streamlit_argv; "
                            "print(gan_core.__file__); print(json.dumps(streamlit_argv(['--server.port', '8555'])))"],
                           cwd=elsewhere, capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    installed = str(env_dir)
    assert where[0].startswith(installed)  # the installed copy, not this checkout
    argv = json.loads(where[1])
    app = Path(argv[2])
    assert argv == ["streamlit", "run", str(app), "--server.port", "8555"]  # options pass through
    assert str(app).startswith(installed) and app.is_file() and (app.parent / ".streamlit" / "config.toml").is_file()
    assert (app.parent / "pages" / "train.py").is_file() and (bin_dir / "gan-studio").exists()


def see_this_environment(python: Path) -> None:
    """Let the new venv import torch & co. from the environment running the tests, whether that is the system
    Python or a venv (a venv's `system_site_packages` would reach the system's, not the parent venv's): a .pth file
    in its site-packages lists ours, after its own, so the installed copy still comes first."""
    ours = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    theirs = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                            capture_output=True, text=True, timeout=60).stdout.strip()
    (Path(theirs) / "gan_studio_test_parent.pth").write_text("\n".join(p for p in ours if Path(p).is_dir()) + "\n")
