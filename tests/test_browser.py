"""JupyterLab in a real browser: a course notebook's widgets work for a student.

The test starts ``jupyter lab`` on localhost (a random token, a free port, its own settings and runtime
directories, stopped afterwards), opens a copy of ``notebooks/02_forward_process.ipynb`` (outputs and saved
widget state removed, so everything on the page comes from this run) in Chromium driven by Playwright,
runs all cells from the *Run* menu, and then uses the notebook as a student would:

- moves the schedule slider with the keyboard and checks that the readout and the figure change (the
  figure is redrawn by the kernel, so this checks the round trip browser -> kernel -> browser);
- answers the first "Quick check" question wrongly, presses *Check* and checks the "Not quite" feedback,
  then answers it rightly and checks for "Right." and the explanation from ``COURSE_QUIZ``.

A second test opens a copy of ``notebooks/01_noise_to_image.ipynb`` *with* its stored outputs, which
JupyterLab shows untrusted (scripts removed), and checks that the stored animation shows its first
frame; then it runs all cells and checks that the new animation shows its first frame at once and that
one click on *next* shows the next frame; that every quiz option wraps inside the notebook (none runs
past the output area's right edge); and that the page requested nothing outside localhost except the
Colab badge of the title cell.

Screenshots are kept in ``test-artifacts/`` (``jupyterlab_quiz.png``, ``jupyterlab_slider.png``,
``jupyterlab_animation.png``), also when the test fails. The browser is Debian's ``chromium`` (Playwright's own browser download is not
used). Without chromium or Playwright the test is skipped, except under ``CI=true``, where it fails:
``.ci/run`` installs both.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from course_utils.homework import COURSE_QUIZ

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO_ROOT / "notebooks" / "02_forward_process.ipynb"
ANIMATION_NOTEBOOK = REPO_ROOT / "notebooks" / "01_noise_to_image.ipynb"
# The one resource a notebook may load from outside this machine: the title cell's Colab badge image
# (offline it shows its alternative text, "Open In Colab").
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
QUIZ = COURSE_QUIZ[2][0]  # the first review question of notebook 02
ARTIFACT_DIR = REPO_ROOT / "test-artifacts"
QUIZ_SCREENSHOT = ARTIFACT_DIR / "jupyterlab_quiz.png"
SLIDER_SCREENSHOT = ARTIFACT_DIR / "jupyterlab_slider.png"
ANIMATION_SCREENSHOT = ARTIFACT_DIR / "jupyterlab_animation.png"

SERVER_START_TIMEOUT_S = 120
RUN_ALL_TIMEOUT_S = 300  # the whole notebook: about 5 s on an idle 2-core machine, 20 s on a busy one
UI_TIMEOUT_MS = 60_000  # page loads, kernel start, a figure redrawn by the kernel
WIDGET_TIMEOUT_MS = 30_000  # the quiz's answer to a click (well under a second when all is well)


def _unavailable(reason: str):
    """Skip on a developer's machine; fail under CI=true, where the browser must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}. CI=true: the browser test must run there (.ci/run installs chromium and "
                    "the test extra, which has playwright)", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        _unavailable("Debian's chromium is not installed (`apt-get install chromium`)")
    return path


def _sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (`pip install -e '.[test]'`)")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterLab:
    """A ``jupyter lab`` process serving ``root`` on 127.0.0.1 with its own token, settings and kernelspec."""

    def __init__(self, root: Path, home: Path):
        self.root, self.home = root, home
        self.port, self.token = _free_port(), secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyter-lab.log"
        self.process: subprocess.Popen | None = None

    def environment(self) -> dict[str, str]:
        settings = self.home / "lab-settings"
        # No "official Jupyter news?" prompt over the notebook (and no request for the news feed).
        notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True)
        notification.write_text(json.dumps({"fetchNews": "false"}), encoding="utf-8")
        # The kernel is this interpreter (where course_utils is installed), whatever `python` on PATH is.
        kernel = self.home / "data" / "kernels" / "python3" / "kernel.json"
        kernel.parent.mkdir(parents=True)
        kernel.write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)", "language": "python"}), encoding="utf-8")
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)  # the kernel must use the inline backend
        env.update({
            "JUPYTER_CONFIG_DIR": str(self.home / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
            "JUPYTER_PATH": os.pathsep.join(filter(None, [str(self.home / "data"), os.environ.get("JUPYTER_PATH")])),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.home / "workspaces"),
        })
        return env

    def start(self) -> None:
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                   "--port-retries=0", f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   "--ServerApp.open_browser=False", "--LabApp.news_url=None",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--LabApp.extension_manager=readonly"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            command.append("--allow-root")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=self.root, env=self.environment(), stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                self.api("GET", "status")
                return
            except (OSError, urllib.error.URLError):
                pass
            if self.process.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within {SERVER_START_TIMEOUT_S} s:\n{self.log_tail()}")
            time.sleep(0.25)

    def api(self, method: str, path: str):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_for_connected_kernel(self) -> None:
        """Until one kernel runs, idle, with a browser connected to it."""
        deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
        while True:
            kernels = self.api("GET", "kernels")
            if len(kernels) == 1 and kernels[0]["execution_state"] == "idle" and kernels[0]["connections"] >= 1:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"no idle kernel with a connection within {UI_TIMEOUT_MS // 1000} s: {kernels}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:  # kernels run in sessions of their own: shut them down through the server first
            for kernel in self.api("GET", "kernels"):
                self.api("DELETE", f"kernels/{kernel['id']}")
        except (OSError, urllib.error.URLError, ValueError):
            pass
        for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait_s)
                break
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"


@pytest.fixture
def browser_tools():
    """``(path of chromium, playwright's sync_playwright)``; a skip (a failure under CI=true) without them."""
    if importlib.util.find_spec("jupyterlab") is None:
        _unavailable("JupyterLab is not installed (`pip install -e '.[course]'`)")
    return _chromium(), _sync_playwright()


@contextmanager
def _serve(tmp_path: Path, notebook: nbformat.NotebookNode, name: str):
    """A running JupyterLab whose root holds ``notebook`` as ``name``."""
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    nbformat.write(notebook, root / name)
    server = JupyterLab(root, home)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def lab_notebook(browser_tools, tmp_path):
    """A fresh copy of notebook 02 (no outputs, no saved widget state) served by a running JupyterLab."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    with _serve(tmp_path, notebook, NOTEBOOK.name) as server:
        yield server, NOTEBOOK.name


@pytest.fixture
def stored_notebook_01(browser_tools, tmp_path):
    """Notebook 01 as stored in the repository, outputs included (JupyterLab shows it untrusted)."""
    with _serve(tmp_path, nbformat.read(ANIMATION_NOTEBOOK, as_version=4), ANIMATION_NOTEBOOK.name) as server:
        yield server, ANIMATION_NOTEBOOK.name


def _tracebacks(page):
    """The error outputs (tracebacks) in the notebook."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                        has_text="Traceback")


def _code_prompts(page) -> list[str]:
    """The input prompts of the notebook's code cells: '[ ]:' not run, '[*]:' queued or running, '[7]:' done."""
    return page.evaluate("""() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                                   .map(prompt => prompt.textContent.trim())""")


def _run_all_cells(page) -> None:
    """Run > Run All Cells, as a student would, and wait until every code cell has run."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))
    page.locator(".lm-Menu-item").filter(has=label).click()
    clicked = time.monotonic()
    while True:  # poll: the run ends in one of three ways, and each gets its own message
        if _tracebacks(page).count():
            raise AssertionError("a cell failed under Run All Cells:\n"
                                 + (_tracebacks(page).first.text_content() or "")[-3000:])
        prompts = _code_prompts(page)
        done = sum(bool(re.fullmatch(r"\[\d+\]:", prompt)) for prompt in prompts)
        if prompts and done == len(prompts):
            return
        elapsed = time.monotonic() - clicked
        if "[*]:" not in prompts and elapsed > 10:
            raise AssertionError(f"Run All Cells stopped after {done} of {len(prompts)} code cells, "
                                 f"without a traceback; prompts: {' '.join(prompts)}")
        if elapsed > RUN_ALL_TIMEOUT_S:
            raise AssertionError(f"the notebook did not finish within {RUN_ALL_TIMEOUT_S} s of Run All Cells "
                                 f"({done} of {len(prompts)} code cells done)")
        page.wait_for_timeout(500)


def _move_slider(page, expect) -> tuple[int, int]:
    """Move the schedule slider to its end with the keyboard; the readout and the kernel-drawn figure follow.

    One key press is one change of the slider's value, so the figure that replaces the first one is the
    kernel's drawing for the new timestep.
    """
    interact = page.locator(".widget-interact").filter(has=page.locator(".widget-slider")).first
    handle = interact.locator(".noUi-handle")
    readout = interact.locator(".widget-readout")
    figure = interact.locator(".widget-output img")
    interact.scroll_into_view_if_needed()
    expect(figure, "the slider's figure was not drawn after Run All Cells").to_be_visible()
    start = int(readout.text_content())
    end = round(float(handle.get_attribute("aria-valuemax")))
    assert start != end, f"the slider starts at its maximum {end}"
    figure_before = figure.get_attribute("src")
    handle.focus()
    page.keyboard.press("End")
    expect(readout, "the slider's readout did not follow the End key").to_have_text(str(end))
    expect(figure, "the figure was not redrawn for the new timestep (slider -> kernel -> figure)"
           ).not_to_have_attribute("src", figure_before)
    expect(figure).to_be_visible()
    return start, end


def _expect_feedback(expect, feedback, text: str, failure: str) -> None:
    """``feedback`` comes to contain ``text`` (the kernel answers a click), or a short AssertionError."""
    try:
        expect(feedback).to_contain_text(text, timeout=WIDGET_TIMEOUT_MS)
    except AssertionError:
        raise AssertionError(f"{failure}: expected the feedback to contain {text!r} within "
                             f"{WIDGET_TIMEOUT_MS // 1000} s, but it is {feedback.text_content()!r}") from None


def _answer_quiz(page, expect) -> None:
    """Answer the first quick check wrongly, then rightly, pressing Check each time."""
    question, options, answer_index, explanation = QUIZ
    quiz = (page.locator(".widget-vbox")
            .filter(has=page.locator(".widget-html-content", has_text=question))
            .filter(has=page.locator(".widget-radio-box")).last)
    expect(quiz, "the quiz widget is not shown").to_be_visible()
    check = quiz.get_by_role("button", name="Check", exact=True)
    feedback = quiz.locator(".widget-html-content").last  # quiz_widget: the feedback is the last child
    quiz.scroll_into_view_if_needed()
    expect(feedback, "the quiz's feedback should be empty before Check is pressed").to_have_text("")

    wrong = next(i for i in range(len(options)) if i != answer_index)
    quiz.get_by_role("radio", name=options[wrong], exact=True).check()
    check.click()
    _expect_feedback(expect, feedback, "Not quite", f"the quiz did not react to Check with the wrong answer "
                     f"{options[wrong]!r} selected (is the Check button's callback broken?)")
    expect(feedback).to_contain_text(options[wrong])
    expect(feedback).not_to_contain_text(explanation[:40])  # a wrong answer does not give the answer away

    quiz.get_by_role("radio", name=options[answer_index], exact=True).check()
    check.click()
    _expect_feedback(expect, feedback, "Right.", f"the quiz did not say 'Right.' to Check with the right answer "
                     f"{options[answer_index]!r} selected")
    expect(feedback).to_contain_text(explanation)
    quiz.scroll_into_view_if_needed()


def test_notebook_widgets_work_in_jupyterlab(browser_tools, lab_notebook):
    chromium, sync_playwright = browser_tools
    from playwright.sync_api import expect

    server, name = lab_notebook
    ARTIFACT_DIR.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            screenshot = QUIZ_SCREENSHOT  # where the page is saved if a step fails
            try:
                kernel_idle = _open_with_idle_kernel(page, server, name)
                _run_all_cells(page)
                screenshot = SLIDER_SCREENSHOT
                start, end = _move_slider(page, expect)
                kernel_idle.wait_for()
                page.screenshot(path=SLIDER_SCREENSHOT)
                screenshot = QUIZ_SCREENSHOT
                _answer_quiz(page, expect)
            finally:
                page.screenshot(path=screenshot)  # the page as it was, also when an assertion failed
                print(f"screenshot: {screenshot}")
        finally:
            browser.close()
    print(f"slider moved from t = {start} to t = {end}; screenshots: {SLIDER_SCREENSHOT}, {QUIZ_SCREENSHOT}")


def _open_with_idle_kernel(page, server, name: str):
    """Open ``name`` and wait until its kernel is idle with the page connected; returns the idle locator."""
    page.goto(server.notebook_url(name))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    # Wait until the kernel has started and the page is connected to it: a Run All Cells
    # sent earlier can be dropped while the session settles.
    kernel_idle = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\|\s*Idle\s*$"))
    kernel_idle.wait_for()
    server.wait_for_connected_kernel()
    return kernel_idle


def _expect_frame_shown(page, animation, expect, when: str) -> None:
    """The animation's <img> is visible, loaded and drawn with a non-zero size."""
    image = animation.locator("img").first
    animation.scroll_into_view_if_needed()
    expect(image, f"{when}: the animation's frame is not visible").to_be_visible()
    size = image.evaluate("img => [img.complete, img.naturalWidth, img.getBoundingClientRect().width,"
                          " img.getBoundingClientRect().height]")
    assert size[0] and size[1] > 0 and size[2] > 0 and size[3] > 0, \
        f"{when}: the animation's frame is not drawn (complete, natural width, width, height = {size})"


def _quiz_options_overflowing(page) -> list[str]:
    """Quiz options (radio labels) that end right of their output area, or are cut inside their label."""
    return page.evaluate("""() => [...document.querySelectorAll('.widget-radio-box label')].filter(label => {
        const area = label.closest('.jp-OutputArea-output').getBoundingClientRect();
        const box = label.getBoundingClientRect();
        return box.right > area.right + 1 || label.scrollWidth > label.clientWidth + 1;
    }).map(label => label.textContent.trim().slice(0, 60))""")


def test_notebook_01_animation_and_quiz_work_offline_in_jupyterlab(browser_tools, stored_notebook_01):
    chromium, sync_playwright = browser_tools
    from playwright.sync_api import expect

    server, name = stored_notebook_01
    ARTIFACT_DIR.mkdir(exist_ok=True)
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            try:
                _open_with_idle_kernel(page, server, name)
                animation = page.locator(".course-animation")
                _expect_frame_shown(page, animation.first, expect, "the stored, untrusted notebook")
                _run_all_cells(page)
                assert animation.count() == 1, f"{animation.count()} animations after Run All Cells, expected 1"
                _expect_frame_shown(page, animation, expect, "right after Run All Cells")
                label = animation.locator("[data-label]")
                image = animation.locator("img")
                first_label, first_frame = label.text_content(), image.get_attribute("src")
                animation.get_by_role("button", name=re.compile("next")).click()
                expect(label, "one click on 'next' did not show the next frame").not_to_have_text(first_label)
                assert image.get_attribute("src") != first_frame, "the label moved on but the image did not"
                _expect_frame_shown(page, animation, expect, "after one click on 'next'")
                page.screenshot(path=ANIMATION_SCREENSHOT)
                radios = page.locator(".widget-radio-box label")
                expect(radios.first, "no quiz was drawn").to_be_visible()
                overflowing = _quiz_options_overflowing(page)
                assert not overflowing, f"quiz options run past the notebook's right edge: {overflowing}"
            finally:
                page.screenshot(path=ANIMATION_SCREENSHOT)
                print(f"screenshot: {ANIMATION_SCREENSHOT}")
        finally:
            browser.close()
    outside = sorted({url for url in requested if urlparse(url).scheme in ("http", "https", "ws", "wss")
                      and urlparse(url).hostname not in ("127.0.0.1", "localhost") and url != COLAB_BADGE})
    assert not outside, f"the page requested resources outside localhost: {outside}"
