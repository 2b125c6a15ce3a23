"""Installing the course from a fresh copy works, the way Colab's bootstrap cell does it, and the
notebooks' Colab badges and bootstrap cells point at the course repository.

``test_fresh_install_runs_notebook_01`` copies the repository's files (``git ls-files``: the tracked
files plus untracked ones that are not ignored, i.e. what a clone of the next commit contains; no
build/, runs/, caches or egg-info) into a temporary folder, makes a new virtual environment there,
installs the copy into it with ``pip install --no-deps -e`` (what the bootstrap cell's
``pip install -e /content/diffusion-course`` does on Colab, whose image already has torch), and
executes notebook 01 from the copy in a Jupyter kernel running the new environment's Python. It
checks that the notebook imported ``course_utils`` from the copy, not from this checkout.

The new environment is layered over the one running the tests on purpose: it sees this environment's
torch, numpy, ipykernel, pip, setuptools and so on, so nothing is downloaded (CI and the course run
offline, and a CPU torch wheel is hundreds of MB). Colab is the same situation: torch is preinstalled
and only the course package is new. The layering is a ``.pth`` file in the new environment's
site-packages that lists this environment's site-packages directories (``site.getsitepackages()``), so
Python finds them after the new environment's own packages. ``venv --system-site-packages`` is not
used: it exposes the *base interpreter's* site-packages, which is not this environment when the tests
run in a virtual environment (as the README recommends): there the copy would be built with the base
interpreter's setuptools (Python 3.11 ships 65.5, which cannot build without ``wheel``) and the kernel
would not find this environment's torch or ipykernel. The course package itself is installed into the
new environment, and Python finds it there first, which the test verifies. pip runs with ``--no-index``
(nothing may be downloaded) and ``--no-build-isolation`` (an isolated build would have to download
setuptools; this environment's, checked below, is used).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from packaging.version import Version

from course_utils.runtime import COURSE_REPOSITORY

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if re.fullmatch(r"\d\d_[A-Za-z0-9_]+\.ipynb", p.name))
NB01 = "01_noise_to_image.ipynb"
REPOSITORY_PATH = COURSE_REPOSITORY.removeprefix("https://github.com/")  # "owner/name"


def repository_files() -> list[str]:
    """Files a clone of the next commit would have: tracked, plus untracked files that are not ignored."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: cannot tell which files a clone would contain")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return sorted(name for name in listed if name and (ROOT / name).is_file())  # deleted files are still listed


def installed_version(name: str) -> Version | None:
    """The version of distribution ``name`` installed in this environment, None if it is not installed."""
    try:
        return Version(version(name))
    except PackageNotFoundError:
        return None


def test_fresh_install_runs_notebook_01(tmp_path):
    if not (NOTEBOOK_DIR / NB01).is_file():
        pytest.skip(f"notebooks/{NB01} does not exist yet")
    # the build backend of pyproject.toml, used without downloading it (--no-build-isolation): editable
    # builds need setuptools>=64, and before 70.1 (which has bdist_wheel built in) the `wheel` package
    setuptools_version = installed_version("setuptools") or Version("0")
    if setuptools_version < Version("64") or (setuptools_version < Version("70.1") and not installed_version("wheel")):
        pytest.skip(f"building the course offline needs setuptools>=70.1 (or >=64 and wheel), "
                    f"found {setuptools_version}")
    clone = tmp_path / "diffusion-course"
    for name in repository_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    assert (clone / "pyproject.toml").is_file() and (clone / "course_utils" / "__init__.py").is_file()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # Layer the new environment over this one (not over the base interpreter, see the module docstring):
    # a .pth file appends this environment's site-packages to the new one's sys.path, after its own.
    parent_site = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        parent_site.append(site.getusersitepackages())
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip()
    Path(venv_site, "parent_environment.pth").write_text("".join(f"{path}\n" for path in parent_site))
    # pip is this environment's (visible through the .pth file); run by the venv's python it installs there
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--no-build-isolation",
                              "--quiet", "--disable-pip-version-check", "-e", str(clone)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr

    kernels = tmp_path / "kernels"
    (kernels / "course-venv").mkdir(parents=True)
    (kernels / "course-venv" / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (fresh course install)", "language": "python"}))
    manager = KernelManager(kernel_name="course-venv", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))

    nb = nbformat.read(clone / "notebooks" / NB01, as_version=4)
    parameters = next(cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", []))
    parameters.source += "\nTHREADS = 1  # test: one thread"
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, sys, course_utils\n"
        "print(json.dumps({'file': course_utils.__file__, 'path': list(course_utils.__path__), 'prefix': sys.prefix}))"))
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    client = NotebookClient(nb, km=manager, timeout=600, startup_timeout=120,
                            resources={"metadata": {"path": str(clone / "notebooks")}})
    try:
        client.execute(env=env)
    finally:  # nbclient stops only kernels it started itself, and this one was started through our manager
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)

    where = json.loads(nb.cells[-1].outputs[0]["text"])
    assert Path(where["prefix"]).resolve() == venv.resolve(), f"the kernel did not run in the new environment: {where}"
    assert where["file"] and Path(where["file"]).resolve().is_relative_to(clone.resolve()), \
        f"course_utils was imported from {where['file'] or where['path']}, not from the fresh copy {clone}"
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors


def test_colab_links_point_at_the_course_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", COURSE_REPOSITORY), COURSE_REPOSITORY
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")

    urls = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert urls["Repository"] == COURSE_REPOSITORY, "pyproject.toml and course_utils.runtime disagree"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"https://colab.research.google.com/github/{REPOSITORY_PATH}/blob/main/notebooks/" in readme
    assert f"https://mybinder.org/v2/gh/{REPOSITORY_PATH}/" in readme


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_badge_and_bootstrap_use_the_course_repository(path):
    nb = nbformat.read(path, as_version=4)
    badge = f"https://colab.research.google.com/github/{REPOSITORY_PATH}/blob/main/notebooks/{path.name}"
    assert badge in nb.cells[0].source, f"the Colab badge of {path.name} must open {badge}"
    bootstrap = nb.cells[1].source
    assert 'course_dir = "/content/diffusion-course"' in bootstrap
    assert f"!git clone --depth 1 {COURSE_REPOSITORY} {{course_dir}}" in bootstrap
    assert "!git -C {course_dir} pull --quiet --ff-only" in bootstrap, "a re-run must update the clone"
    assert "!pip install --quiet --no-deps -e {course_dir}" in bootstrap, "Colab's own packages stay as they are"
    assert 'if "google.colab" in sys.modules:' in bootstrap, "the bootstrap must do nothing outside Colab"


# Colab's preinstalled versions of the packages the course uses, from the pip freeze that Google
# publishes for its runtime (github.com/googlecolab/backend-info, pip-freeze.txt at commit a724079 of
# 2026-08-19, "Upgrade to Python 3.13"): torch 2.11.0+cpu, transformers 5.15.0, diffusers 0.39.0,
# ipywidgets 7.7.1, ... and no torchmetrics. torch is not installed here: a CUDA or CPU torch wheel is
# hundreds of MB to GBs; this environment's torch stands in for it.
COLAB_VERSIONS = {"transformers": "5.15.0", "diffusers": "0.39.0", "ipywidgets": "7.7.1",
                  "huggingface_hub": "1.27.0", "tokenizers": "0.22.2", "safetensors": "0.8.0", "tqdm": "4.67.3",
                  "matplotlib": "3.10.0", "numpy": "2.1.3"}
FAKE_COLAB = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')"


@pytest.mark.skipif(not os.environ.get("COURSE_TEST_COLAB"),
                    reason="downloads Colab's package versions from PyPI (minutes): run it with COURSE_TEST_COLAB=1")
def test_colab_cell_keeps_colabs_packages_and_updates_on_a_rerun(tmp_path):
    """Notebook 01's Colab cell in a new virtual environment holding Colab's versions: the course clones
    and installs without changing any of them, notebook 01 runs, and a re-run pulls a new commit."""
    remote = tmp_path / "remote"
    for name in repository_files():
        (remote / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, remote / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "the course"]):
        subprocess.run([*git, *command], cwd=remote, check=True, capture_output=True)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, scripts = venv / "bin" / "python", venv / "bin"
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip()
    # torch, ipykernel and the rest come from this environment, after the new one's own packages
    Path(venv_site, "parent_environment.pth").write_text("".join(f"{p}\n" for p in site.getsitepackages()))
    pins = [f"{name}=={pinned}" for name, pinned in COLAB_VERSIONS.items()]
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr
    versions = ("import json, importlib.metadata as m; "
                f"print(json.dumps({{n: m.version(n) for n in {sorted(COLAB_VERSIONS)!r}}}))")

    def installed() -> dict:
        return json.loads(subprocess.run([str(python), "-c", versions], capture_output=True, text=True,
                                         check=True).stdout)

    assert installed() == COLAB_VERSIONS

    clone = tmp_path / "content" / "diffusion-course"
    nb = nbformat.read(ROOT / "notebooks" / NB01, as_version=4)
    bootstrap = nb.cells[1].source.replace("/content/diffusion-course", str(clone)).replace(
        COURSE_REPOSITORY, remote.as_uri())
    kernels = tmp_path / "kernels"
    (kernels / "colab-venv").mkdir(parents=True)
    (kernels / "colab-venv" / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python"}))
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{scripts}{os.pathsep}{env.get('PATH', '')}"  # `!pip` is the new environment's
    manager = KernelManager(kernel_name="colab-venv", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    run_nb = nbformat.v4.new_notebook()
    client = NotebookClient(run_nb, km=manager, timeout=900, startup_timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}})

    def run(source: str) -> list:
        cell = nbformat.v4.new_code_cell(source)
        run_nb.cells.append(cell)
        client.execute_cell(cell, len(run_nb.cells) - 1)
        return cell.outputs

    try:
        with client.setup_kernel(env=env):
            run(FAKE_COLAB)
            first = run(bootstrap)
            assert (clone / "course_utils" / "__init__.py").is_file(), f"the cell did not clone the course: {first}"
            run(f"import os\nos.chdir({str(clone / 'notebooks')!r})")
            for cell in nb.cells[2:]:
                if cell.cell_type == "code":
                    source = cell.source
                    if "parameters" in cell.metadata.get("tags", []):
                        source += "\nTHREADS = 1  # test: one thread"
                    run(source)
            where = run("import course_utils\nprint(course_utils.__file__)")
            assert str(clone) in where[0]["text"], f"course_utils came from {where}"
            (remote / "UPDATED").write_text("a new commit on the course's main branch\n")
            subprocess.run([*git, "add", "UPDATED"], cwd=remote, check=True)
            subprocess.run([*git, "commit", "-qm", "update"], cwd=remote, check=True)
            run(bootstrap)  # the learner runs the cell again
            assert (clone / "UPDATED").is_file(), "re-running the Colab cell did not update the clone"
    finally:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    assert installed() == COLAB_VERSIONS, "the Colab cell changed Colab's preinstalled packages"
