"""The course in a real browser: JupyterLab on localhost, headless Chromium, Run All Cells, as a student does.

nbval (the rest of `pytest`) executes the notebooks without a browser; this module checks what only a
browser shows. Copies of the solutions notebooks 00, 04 and 10 (JupyterLab autosaves what it opens, so the
repository's files are never opened) are served by a JupyterLab with a temporary HOME, and for each one:
every code cell runs, with an error only in the cells tagged ``raises-exception`` (each of which does show
its error); every figure is displayed; the slider of ``interactive_plot`` redraws its figure when moved
with the keyboard; and notebook 10's training shows a tqdm progress bar. A full-length screenshot of each
notebook, and of each slider cell before and after the move, goes to ``.ci/artifacts/browser/``.

Skipped, with the reason, only when the ``playwright`` package or a Chromium is missing (``.ci/run``
installs both). Notebook 10 trains for 2 minutes: ``-k "not 10_training"`` leaves it out.
All tests are in this one module, so pytest-xdist (``--dist loadscope``) runs them on one worker, in order.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / ".ci" / "artifacts" / "browser"
sys.path.insert(0, str(ROOT / "tools"))

import lab_browser  # noqa: E402  (tools/ is not a package)

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs the playwright package: pip install playwright "
    "(its Python package only; `playwright install` is not needed when Debian's chromium is installed)")
CHROMIUM = lab_browser.find_chromium()
if CHROMIUM is None:
    pytest.skip("the browser test needs Chromium: none found as $CHROMIUM, `chromium` or `chromium-browser` "
                "on PATH, or playwright's download (apt-get install chromium)", allow_module_level=True)

# The notebooks run, in this order, with a limit (seconds) for their Run All. 10 trains for 120 s on a CPU.
NOTEBOOKS = {"00_setup": 180, "04_positional_encoding": 300, "10_training": 480}
DELIBERATE = "raises-exception"  # the tag of a cell whose error is the lesson (README, "Writing notebooks")
OUTPUT = ".jp-OutputArea-output"
ERROR_OUTPUT = f"{OUTPUT}[data-mime-type='application/vnd.jupyter.stderr']"  # how JupyterLab shows an error


@dataclass
class Run:
    """One notebook after Run All: its page (kernel still running), the notebook JupyterLab holds, timings."""

    name: str
    page: object  # playwright Page
    notebook: dict  # nbformat JSON, outputs included
    finished: bool
    seconds: float
    screenshot: Path

    def code_cells(self) -> list[tuple[int, dict]]:
        """(index among all cells, cell) for every code cell."""
        return [(i, cell) for i, cell in enumerate(self.notebook["cells"]) if cell["cell_type"] == "code"]

    def cell(self, index: int):
        """The page's element of cell ``index`` (every cell is rendered: windowingMode "none")."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab serving copies of the notebooks, and a headless Chromium; artifacts folder emptied."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    root, home = tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home")
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "solutions" / f"{name}.ipynb", root)
    print(f"browser test: screenshots and the JupyterLab log in {ARTIFACTS}")
    with lab_browser.JupyterLab(root, home, ARTIFACTS / "jupyterlab.log") as server, \
            playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(lab_browser.CHROMIUM_ARGS))
        try:
            yield server, browser
        finally:
            browser.close()


@pytest.fixture(scope="module", params=list(NOTEBOOKS))
def run(request, lab) -> Run:
    """Open one notebook in a new page, Run All, screenshot it; its kernel is stopped after its tests."""
    server, browser = lab
    name, path = request.param, f"{request.param}.ipynb"
    page = browser.new_page(viewport=lab_browser.VIEWPORT)
    page.set_default_timeout(60_000)
    start = time.monotonic()
    try:
        lab_browser.open_notebook(page, server, path)
        finished, notebook = lab_browser.run_all(page, path, timeout_s=NOTEBOOKS[name])
        seconds = time.monotonic() - start
        shot = lab_browser.screenshot_notebook(page, ARTIFACTS / f"{name}.png")
        print(f"{name}: Run All {'finished' if finished else 'DID NOT FINISH'} in {seconds:.0f} s; screenshot {shot}")
        yield Run(name, page, notebook, finished, seconds, shot)
    finally:
        page.close()
        server.shutdown_kernels()


def _error_text(cell: dict) -> str:
    return "; ".join(f"{o['ename']}: {o['evalue']}"[:300] for o in cell["outputs"] if o["output_type"] == "error")


def test_every_cell_runs_and_only_deliberate_cells_fail(run: Run):
    assert run.finished, f"{run.name}: Run All still busy after {NOTEBOOKS[run.name]} s (see {run.screenshot})"
    unexpected = {i: _error_text(cell) for i, cell in run.code_cells()
                  if _error_text(cell) and DELIBERATE not in cell["metadata"].get("tags", [])}
    if unexpected:
        first = min(unexpected)
        run.cell(first).screenshot(path=str(ARTIFACTS / f"{run.name}-first-error.png"))
        pytest.fail(f"{run.name}: errors in cells not tagged {DELIBERATE!r}: {unexpected} "
                    f"(see {ARTIFACTS / f'{run.name}-first-error.png'})")
    not_run = [i for i, cell in run.code_cells() if cell["execution_count"] is None]
    assert not not_run, f"{run.name}: cells {not_run} never ran (see {run.screenshot})"
    deliberate = [i for i, cell in run.code_cells() if DELIBERATE in cell["metadata"].get("tags", [])]
    if run.name == "00_setup":  # it teaches what a failed check looks like
        assert deliberate, f"{run.name}: no cell tagged {DELIBERATE!r} any more"
    for i in deliberate:
        cell = run.notebook["cells"][i]
        assert _error_text(cell), f"{run.name}: cell {i} is tagged {DELIBERATE!r} but raised nothing"
        ename = next(o["ename"] for o in cell["outputs"] if o["output_type"] == "error")
        shown = run.cell(i).locator(ERROR_OUTPUT)
        assert shown.count() == 1 and ename in shown.inner_text(), \
            f"{run.name}: cell {i}'s {ename} is not displayed under it (see {run.screenshot})"


def _poll(read, before: object, *, timeout_s: float) -> object:
    """``read()`` every 0.2 s until it differs from ``before`` or ``timeout_s`` passed; its last value."""
    deadline = time.monotonic() + timeout_s
    while (value := read()) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def test_every_figure_renders(run: Run):
    expected = sum("image/png" in o.get("data", {}) for _, cell in run.code_cells() for o in cell["outputs"])
    selector = f".jp-CodeCell {OUTPUT} img"
    with contextlib.suppress(playwright_api.TimeoutError):  # then the assertion below says which are not drawn
        run.page.wait_for_function("s => Array.from(document.querySelectorAll(s)).every(img => img.complete)",
                                   arg=selector, timeout=10_000)
    loaded = run.page.locator(selector).evaluate_all("imgs => imgs.map(img => img.complete && img.naturalWidth > 0)")
    assert expected > 0, f"{run.name} displayed no figure at all"
    assert len(loaded) == expected and all(loaded), \
        f"{run.name}: {sum(loaded)} of {expected} figures drawn in the page (see {run.screenshot})"


def test_slider_redraws_its_figure(run: Run):
    """Focus the first slider's handle, press ArrowRight 3 times: its value and the figure above it change."""
    page = run.page
    assert page.locator(OUTPUT).filter(has_text="Error displaying widget").count() == 0, \
        f"{run.name}: a widget failed to display (see {run.screenshot})"
    cell = page.locator(".jp-Notebook .jp-Cell").filter(has=page.locator(f"{OUTPUT} .widget-slider")).first
    assert cell.count() == 1, f"{run.name}: no ipywidgets slider rendered (see {run.screenshot})"
    image, readout = cell.locator(f"{OUTPUT} img").first, cell.locator(".widget-readout").first
    before_src, before_value = image.get_attribute("src"), readout.inner_text()
    outputs = cell.locator(".jp-Cell-outputArea")  # the figure and its slider (the whole cell may not fit the window)
    outputs.screenshot(path=str(ARTIFACTS / f"{run.name}-slider-before.png"))
    cell.locator(".noUi-handle").first.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    # Each key press is a new value, sent to the kernel, which redraws; the new figure replaces the <img>
    # (the locator finds the new one). The screenshot waits for the last redraw.
    value = _poll(readout.inner_text, before_value, timeout_s=10)
    assert value != before_value, f"{run.name}: the slider still reads {before_value} after 3 ArrowRight presses"
    _poll(lambda: image.get_attribute("src"), before_src, timeout_s=30)
    assert lab_browser.wait_until_quiet(page, f"{run.name}.ipynb"), f"{run.name}: the kernel is still busy redrawing"
    outputs.screenshot(path=str(ARTIFACTS / f"{run.name}-slider-after.png"))
    redrawn = image.get_attribute("src") != before_src
    assert redrawn, f"{run.name}: the slider moved from {before_value} to {value} but its figure was not redrawn " \
                    f"(see {ARTIFACTS / f'{run.name}-slider-after.png'})"
    assert image.evaluate("img => img.complete && img.naturalWidth > 0"), f"{run.name}: the redrawn figure is empty"


@pytest.mark.parametrize("run", ["10_training"], indirect=True)
def test_training_shows_a_progress_bar(run: Run):
    """The Trainer's tqdm bar (tqdm.auto: a widget here): `training: [bar] 152/? [02:01<00:00, 2.17step/s, ...]`."""
    bars = run.page.locator(f"{OUTPUT} .widget-hbox").filter(has=run.page.locator(".widget-hprogress"))
    assert bars.count() > 0, f"{run.name}: no tqdm progress bar rendered (see {run.screenshot})"
    label = " ".join(bars.first.inner_text().split())
    print(f"{run.name}: progress bar {label!r}")
    assert label.startswith("training") and "step/s" in label, f"{run.name}: the progress bar reads {label!r}"
