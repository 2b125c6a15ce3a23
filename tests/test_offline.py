"""The course runs offline: nothing it executes tries to reach the network.

A ``sitecustomize.py`` put first on PYTHONPATH is imported by every Python process started with that
environment (a Jupyter kernel, and anything the kernel starts in turn). It wraps the Python-level entry
points to the network -- ``socket.socket.connect``/``connect_ex``, ``socket.create_connection``,
``socket.getaddrinfo`` and ``socket.gethostbyname`` -- so that an attempt to reach anything but this
machine (loopback addresses, ``localhost``, the own host name, Unix sockets) is written to a log file and
fails with ``OSError``. Name lookups are guarded too: on a machine without network they fail before any
``connect`` happens, so guarding ``connect`` alone would miss exactly the attempts that matter.

The kernel talks to its client over ZeroMQ on loopback TCP, from C: that traffic never passes through
Python's socket module and loopback is allowed anyway.

What the browser loads is checked too: no stored notebook output (HTML, SVG, markdown) and no markdown
cell asks for a resource outside this machine (a script, style sheet, image, font, ``url(...)``),
except the Colab badge image of each title cell (offline it shows its alternative text). Links a
reader may click (``<a href>``) are not loaded and are allowed. ``external_resources`` is also used on
nbgrader's feedback (tests/test_nbgrader_path.py), and the browser test watches real requests.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if re.fullmatch(r"\d\d_[A-Za-z0-9_]+\.ipynb", p.name))
# The one resource outside this machine a notebook may load: the title cell's Colab badge image.
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# What a browser fetches by itself: src of media and scripts, <link href>, CSS url(...) and @import,
# markdown images. (<a href> is a link, fetched only when clicked.)
LOADED = re.compile(r"""<(?:img|script|iframe|frame|audio|video|source|track|embed|input|object)\b[^>]*?\s(?:src|data)\s*=\s*["']?([^"'\s>]+)"""
                    r"""|<link\b[^>]*?\shref\s*=\s*["']?([^"'\s>]+)"""
                    r"""|url\(\s*["']?([^"')\s]+)|@import\s+["']([^"']+)|!\[[^\]]*\]\(\s*<?([^)\s>]+)""",
                    re.IGNORECASE)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def external_resources(text: str) -> list[str]:
    """Addresses outside this machine that a browser would load when showing ``text`` (HTML, SVG or
    markdown), the Colab badge left out."""
    found = [next(group for group in match.groups() if group) for match in LOADED.finditer(text)]
    external = [url for url in found if re.match(r"(?i)(https?:|wss?:)?//", url)
                and urlparse(url if ":" in url.split("//")[0] else "http:" + url).hostname not in LOCAL_HOSTS]
    return [url for url in external if url != COLAB_BADGE]

GUARD_SOURCE = '''
"""Network guard for the course's offline tests (written by tests/test_offline.py)."""
import errno
import ipaddress
import json
import os
import re
import socket
import traceback

_LOG = os.environ.get("COURSE_NETGUARD_LOG")
_LOCAL_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
try:
    _LOCAL_NAMES.add(socket.gethostname().lower())
except OSError:
    pass


def _is_local(host):
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).split("%")[0].lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _block(call, target):
    entry = {"call": call, "target": repr(target), "pid": os.getpid(),
             "stack": traceback.format_stack(limit=15)[:-2]}
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\\n")
    raise OSError(errno.ENETUNREACH, f"network access blocked by the course's offline test: {call}({target!r})")


_INET = (socket.AF_INET, socket.AF_INET6)
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_create_connection = socket.create_connection
_getaddrinfo = socket.getaddrinfo
_gethostbyname = socket.gethostbyname


def connect(self, address):
    if self.family in _INET and not _is_local(address[0]):
        _block("socket.connect", address)
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in _INET and not _is_local(address[0]):
        _block("socket.connect_ex", address)
    return _connect_ex(self, address)


def create_connection(address, *args, **kwargs):
    if not _is_local(address[0]):
        _block("socket.create_connection", address)
    return _create_connection(address, *args, **kwargs)


def getaddrinfo(host, *args, **kwargs):
    if not _is_local(host):
        _block("socket.getaddrinfo", host)
    return _getaddrinfo(host, *args, **kwargs)


def gethostbyname(host):
    if not _is_local(host):
        _block("socket.gethostbyname", host)
    return _gethostbyname(host)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.create_connection = create_connection
socket.getaddrinfo = getaddrinfo
socket.gethostbyname = gethostbyname
socket.COURSE_NETGUARD = True
'''

GUARD_CHECK_CELL = (
    "import socket\n"
    "assert getattr(socket, 'COURSE_NETGUARD', False), 'the network guard is not active in this kernel'"
)


@pytest.fixture
def guarded_env(tmp_path, monkeypatch):
    """Put the guard first on PYTHONPATH of every process started from now on; return its log file."""
    guard_dir = tmp_path / "netguard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD_SOURCE, encoding="utf-8")
    log = tmp_path / "network_attempts.jsonl"
    pythonpath = [str(guard_dir)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(pythonpath))
    monkeypatch.setenv("COURSE_NETGUARD_LOG", str(log))
    return log


def attempts(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def describe(entries: list[dict]) -> str:
    return "\n\n".join(f"{e['call']}({e['target']}) in pid {e['pid']}:\n{''.join(e['stack'])}" for e in entries)


def execute_guarded(nb, cwd: Path, timeout: int = 600):
    """Run a notebook in a fresh python3 kernel (which inherits the guarded environment)."""
    nb.cells.insert(0, nbformat.v4.new_code_cell(GUARD_CHECK_CELL))
    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def test_guard_records_and_blocks_a_connection_from_a_kernel(guarded_env, tmp_path):
    """The guard works in a kernel: a connection to a documentation-range address (TEST-NET-3) is
    refused and logged, while the kernel's own loopback traffic goes through."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent("""\
        import socket
        try:
            socket.create_connection(("203.0.113.1", 80), timeout=1)
        except OSError as error:
            print("blocked:", error)
        else:
            raise AssertionError("the connection was not blocked")
        """)))
    execute_guarded(nb, tmp_path, timeout=120)
    assert "blocked:" in nb.cells[-1].outputs[0]["text"]
    logged = attempts(guarded_env)
    assert [e["call"] for e in logged] == ["socket.create_connection"], describe(logged)
    assert "203.0.113.1" in logged[0]["target"]


def test_notebook_01_attempts_no_network_access(guarded_env, require_notebook):
    path = require_notebook("01_noise_to_image.ipynb")
    nb = execute_guarded(nbformat.read(path, as_version=4), path.parent)
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.output_type == "error"]
    assert not errors, errors
    logged = attempts(guarded_env)
    assert not logged, "the notebook tried to reach the network:\n" + describe(logged)


SCHEDULER_SCRIPT = textwrap.dedent("""\
    import socket
    assert getattr(socket, "COURSE_NETGUARD", False), "the network guard is not active"
    import course_utils
    import course_utils.runtime, course_utils.data, course_utils.schedules, course_utils.unet
    import course_utils.ddpm, course_utils.checkpoints, course_utils.viz
    from diffusers import DDPMScheduler
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    scheduler.set_timesteps(50)
    print("timesteps", len(scheduler.timesteps))
    """)


def run_guarded_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ))


def test_course_utils_and_diffusers_scheduler_attempt_no_network_access(guarded_env):
    result = run_guarded_python(SCHEDULER_SCRIPT)
    assert result.returncode == 0, result.stderr
    assert "timesteps 50" in result.stdout
    logged = attempts(guarded_env)
    assert not logged, "importing course_utils or building the scheduler tried the network:\n" + describe(logged)


def test_guard_catches_a_name_lookup_in_a_plain_process(guarded_env):
    """Without network, a download fails at the name lookup, before any connect: the guard sees it."""
    result = run_guarded_python(textwrap.dedent("""\
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy: a direct attempt
        try:
            opener.open("https://huggingface.co/api/models", timeout=2)
        except OSError as error:
            print("blocked:", type(error).__name__)
        """))
    assert result.returncode == 0, result.stderr
    assert "blocked:" in result.stdout
    calls = [e["call"] for e in attempts(guarded_env)]
    assert calls and calls[0] in ("socket.getaddrinfo", "socket.create_connection"), calls


PIPELINE_SCRIPT = textwrap.dedent("""\
    import socket
    assert getattr(socket, "COURSE_NETGUARD", False), "the network guard is not active"
    import torch
    from course_utils import guidance, latents, pipeline
    guidance.load_text2image(); latents.load_vae()
    pipe = pipeline.load_pipeline(pipeline.choose_model("course"))
    images = pipe(["a thick seven"], num_inference_steps=2, output_type="pt",
                  generator=torch.Generator().manual_seed(0)).images
    print("images", tuple(images.shape))
    """)


def test_course_pipeline_loads_and_runs_without_network_even_without_hf_hub_offline(guarded_env, monkeypatch):
    """Notebook 07's default path: the bundled pipeline, loaded with from_pretrained, never tries the hub,
    even when HF_HUB_OFFLINE is not set."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    result = run_guarded_python(PIPELINE_SCRIPT)
    assert result.returncode == 0, result.stderr
    assert "images (1, 1, 32, 32)" in result.stdout
    logged = attempts(guarded_env)
    assert not logged, "loading or running the course pipeline tried the network:\n" + describe(logged)


def test_external_resources_finds_what_a_browser_would_load():
    page = ('<link rel="stylesheet" href="https://cdn.example.org/fa.css"><script src="//cdn.example.org/m.js">'
            '</script><img src="data:image/png;base64,AAAA"><a href="https://arxiv.org/abs/2006.11239">paper</a>'
            '<style>@import "https://fonts.example.org/f.css"; b {background: url(http://127.0.0.1:8888/x.png)}</style>'
            f"![Open In Colab]({COLAB_BADGE}) ![plot](https://example.org/p.png)")
    assert external_resources(page) == ["https://cdn.example.org/fa.css", "//cdn.example.org/m.js",
                                        "https://fonts.example.org/f.css", "https://example.org/p.png"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_stored_notebook_loads_nothing_from_the_network(path):
    """No output of the stored notebook and no markdown cell loads a resource from outside this machine
    (notebook 01's animation used to load Font Awesome from a CDN), except the Colab badge."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    for index, cell in enumerate(nb.cells):
        texts = [cell.source] if cell.cell_type == "markdown" else []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            texts += [data[mime] for mime in ("text/html", "image/svg+xml", "text/markdown") if mime in data]
        for text in texts:
            text = "".join(text) if isinstance(text, list) else text
            problems += [f"cell {index}: {url}" for url in external_resources(text)]
    assert not problems, f"{path.name} loads resources from the network: {problems}"
