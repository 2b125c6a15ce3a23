"""The ways to install the course agree with pyproject.toml, and every one gets a CPU-only torch."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO_ROOT = Path(__file__).resolve().parent.parent
CI_TORCH = Version("2.13.0")
README_TEST_COMMAND = "HF_HUB_OFFLINE=1 python -m pytest"
# pip distribution name -> conda-forge package names that provide it
CONDA_NAMES = {"torch": {"pytorch", "pytorch-cpu"}, "matplotlib": {"matplotlib", "matplotlib-base"}}


def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def runtime_requirements() -> list[Requirement]:
    return [Requirement(r) for r in pyproject()["project"]["dependencies"]]


def conda_environment(path: Path) -> tuple[dict[str, str], list[str]]:
    """``({conda package name: spec}, [pip lines])`` from an environment.yml."""
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert env.get("channels") == ["conda-forge"], "use conda-forge only"
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.extend(dep.get("pip", []))
            continue
        name = re.split(r"[\s=<>!~]", dep.strip(), maxsplit=1)[0]
        conda[canonicalize_name(name)] = dep.strip()
    return conda, pip


def pip_requirements(path: Path) -> tuple[list[Requirement], list[str]]:
    """``([requirements], [option lines])`` from a pip requirements file."""
    requirements, options = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
        else:
            requirements.append(Requirement(line))
    return requirements, options


def test_pyproject_torch_range_admits_the_ci_torch():
    torch = next(r for r in runtime_requirements() if r.name == "torch")
    assert CI_TORCH in torch.specifier, f"pyproject's {torch} excludes torch {CI_TORCH} used by CI"
    assert Version("3.0") not in torch.specifier, "torch 3 is untested: keep an upper bound"


def test_specifier_check_can_fail():
    assert CI_TORCH not in SpecifierSet(">=2.2,<2.13")


def test_conda_environment_is_cpu_only_and_complete():
    conda, pip = conda_environment(REPO_ROOT / "environment.yml")
    assert "pytorch-cpu" in conda or re.search(r"=\s*\*?cpu", conda.get("pytorch", "")), \
        "environment.yml must pin CPU-only torch (conda-forge: `pytorch-cpu`, or `pytorch=*=cpu*`)"
    assert not {"pytorch-gpu", "cudatoolkit", "cuda-version", "pytorch-cuda"} & set(conda), "no CUDA packages"
    assert not any(re.search(r"\bcuda", spec) for spec in conda.values()), conda
    missing = [r.name for r in runtime_requirements()
               if not CONDA_NAMES.get(r.name, {canonicalize_name(r.name)}) & set(conda)]
    assert not missing, f"environment.yml lacks runtime dependencies of pyproject.toml: {missing}"
    assert conda.get("python", "").replace(" ", "") == "python=3.11"
    assert "-e ." in [line.strip() for line in pip], "environment.yml must pip-install the course (`-e .`)"


def test_binder_requirements_are_cpu_only_and_complete():
    requirements, options = pip_requirements(REPO_ROOT / "binder" / "requirements.txt")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in options
    torch = next(r for r in requirements if r.name == "torch")
    pinned = [s.version for s in torch.specifier if s.operator == "=="]
    assert pinned and pinned[0].endswith("+cpu"), f"binder torch must be a +cpu build, got {torch}"
    assert Version(pinned[0]).public == str(CI_TORCH), f"binder torch {pinned[0]} differs from CI's {CI_TORCH}"
    by_name = {canonicalize_name(r.name): r for r in requirements}
    for dep in runtime_requirements():
        assert canonicalize_name(dep.name) in by_name, f"binder/requirements.txt lacks {dep}"
        if dep.name != "torch":
            assert by_name[canonicalize_name(dep.name)].specifier == dep.specifier, \
                f"binder/requirements.txt has {by_name[canonicalize_name(dep.name)]}, pyproject.toml {dep}"


def test_binder_post_build_installs_the_package():
    post_build = REPO_ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    text = post_build.read_text(encoding="utf-8")
    assert text.startswith("#!"), "binder/postBuild needs a shebang line"
    assert re.search(r"^python -m pip install --no-deps -e \.\s*$", text, re.MULTILINE)
    assert (REPO_ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_ci_script_installs_cpu_torch_first_then_runs_the_readme_command():
    run = REPO_ROOT / ".ci" / "run"
    assert os.access(run, os.X_OK), ".ci/run must be executable"
    lines = [line.strip() for line in run.read_text(encoding="utf-8").splitlines()]
    assert "set -euo pipefail" in lines
    # both installs are held to the versions CI tested (constraints.txt)
    torch_line = lines.index(f"python -m pip install -c constraints.txt torch=={CI_TORCH}")
    package_line = lines.index('python -m pip install -c constraints.txt -e ".[test]"')
    test_line = lines.index(README_TEST_COMMAND)
    assert torch_line < package_line < test_line
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert README_TEST_COMMAND in readme, "README.md and .ci/run must give the same test command"


def constraint_pins() -> dict[str, Version]:
    """``{name: version}`` from constraints.txt, where every line must be an exact ``name==version`` pin."""
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==" and not requirement.marker, \
            f"constraints.txt: {line!r} is not an exact pin"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"constraints.txt pins {name} twice"
        pins[name] = Version(specifiers[0].version)
    return pins


def pin_problems(requirements: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """The requirements that constraints.txt does not pin, or pins to a version they exclude."""
    problems = []
    for requirement in requirements:
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement}: not pinned")
        elif not requirement.specifier.contains(pin, prereleases=True):
            problems.append(f"{requirement}: pinned to {pin}")
    return problems


def test_constraints_pin_every_requirement_within_its_specifier():
    pins = constraint_pins()
    extras = pyproject()["project"]["optional-dependencies"]
    requirements = runtime_requirements() + [Requirement(r) for extra in ("test", "course", "homework")
                                             for r in extras[extra]]
    assert not pin_problems(requirements, pins), "pyproject.toml and constraints.txt disagree"
    assert pins["torch"] == CI_TORCH, f"constraints.txt pins torch {pins['torch']}, CI installs {CI_TORCH}"
    assert "diffusion-course" not in pins, "the course package itself is not a constraint"
    # the course is built on these two: their lower bounds are the tested minor release, not an untested older one
    for requirement in runtime_requirements():
        if requirement.name in ("diffusers", "transformers"):
            tested = pins[requirement.name]
            lower = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
            assert lower == [Version(f"{tested.major}.{tested.minor}")], \
                f"{requirement}: its lower bound should be the tested release {tested.major}.{tested.minor}"
    # the check can fail
    assert pin_problems([Requirement("diffusers>=99"), Requirement("not-a-course-dependency")], pins) == [
        f"diffusers>=99: pinned to {pins['diffusers']}", "not-a-course-dependency: not pinned"]


def test_pytest_runs_tests_and_notebooks_with_nbval():
    options = pyproject()["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["tests", "notebooks"]
    for flag in ("--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with tests/nbval_sanitize.cfg"):
        assert flag in options["addopts"], flag
    assert (REPO_ROOT / "tests" / "nbval_sanitize.cfg").is_file()


def test_sanitizer_rules_parse_and_leave_rounded_numbers_alone():
    from nbval.plugin import get_sanitize_patterns

    rules = get_sanitize_patterns((REPO_ROOT / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8"))
    assert len(rules) >= 5

    def sanitize(text):
        for regex, replace in rules:
            text = re.sub(regex, replace, text)
        return text

    assert sanitize("<Foo at 0x7f3a9c2e10>") == sanitize("<Foo at 0x55d1e0a3b8>")
    assert sanitize("sampled in 12.3 s (45.6 it/s)") == sanitize("sampled in 9.8 s (51.2 it/s)")
    assert sanitize("mean abs error: 0.123, 50 steps") != sanitize("mean abs error: 0.124, 50 steps")
    assert sanitize("50 steps") != sanitize("20 steps")


def test_data_readme_lists_the_checksums_the_code_verifies():
    from course_utils.data import MNIST_SHA256

    text = (REPO_ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for name, digest in MNIST_SHA256.items():
        assert re.search(rf"{re.escape(name)}.*{digest}", text), f"data/README.md lacks {name} {digest}"


def test_licenses_are_declared():
    assert (REPO_ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "CC BY-SA 3.0" in readme and "CC BY-SA 3.0" in (REPO_ROOT / "data" / "README.md").read_text()


# A clone stays small, and the GPU runner's 64 MiB (67 MB) upload limit keeps its margin; weights kept for later
# sessions live in history only, and figures are stored as small PNGs (viz draws digits pixel for pixel).
TREE_LIMIT_BYTES = 50_000_000


def test_tracked_tree_stays_under_50_mb():
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout.split(b"\0")
    sizes = {name.decode(): (REPO_ROOT / name.decode()).stat().st_size for name in files
             if name and (REPO_ROOT / name.decode()).is_file()}
    largest = sorted(sizes, key=sizes.get, reverse=True)[:3]
    assert sum(sizes.values()) <= TREE_LIMIT_BYTES, \
        f"tracked files total {sum(sizes.values()) / 1e6:.1f} MB (limit {TREE_LIMIT_BYTES / 1e6:.0f} MB); largest: {largest}"


def test_the_package_docstring_names_every_module():
    """``course_utils/__init__.py`` is the map of the library: a module it does not list is one a reader cannot find."""
    import course_utils

    modules = {path.stem for path in (REPO_ROOT / "course_utils").glob("*.py") if path.stem != "__init__"}
    listed = set(re.findall(r"^- ``(\w+)``:", course_utils.__doc__, flags=re.MULTILINE))
    assert modules - listed == set(), "modules missing from course_utils/__init__.py's list"
    assert listed - modules == set(), "course_utils/__init__.py lists modules that do not exist"
