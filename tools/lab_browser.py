"""Run notebooks in JupyterLab in headless Chromium, the way a student does, and see what they would see.

Used by tests/test_browser.py, and as a tool: it copies the notebooks into a temporary folder (JupyterLab
autosaves what it opens), runs all their cells in a real browser, and writes one full-length screenshot per
notebook::

    python tools/lab_browser.py OUT_DIR solutions/00_setup.ipynb solutions/04_positional_encoding.ipynb

Needs JupyterLab (requirements.txt), pip ``playwright`` (its Python package only: ``playwright install``
is not needed) and a Chromium: Debian's ``chromium`` package, or a browser that ``playwright install``
downloaded. What makes JupyterLab reliable headless (see :func:`write_lab_settings`): a temporary HOME
and Jupyter folders, every cell rendered (no virtual scrolling), no news pop-up, and the app object
exposed in the page so that commands run by name instead of clicking menus by their text.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")
VIEWPORT = {"width": 1400, "height": 1000}
SCREENSHOT_MAX_HEIGHT = 30_000  # px: a taller notebook is cut there (Chromium's own limit is about 32k)

# In the page: the notebook panel showing `path`, and a wait until its kernel has been idle, with no cell
# queued or running, for `quietMs` in a row (or `timeoutMs` passed): true if it went quiet.
_PANEL = "Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === path)"
_QUIET = """async (panel, timeoutMs, quietMs, ready) => {
  const start = Date.now();
  let quietSince = null;
  while (Date.now() - start < timeoutMs) {
    await new Promise(resolve => setTimeout(resolve, 200));
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const busy = !ready() || !kernel || kernel.status !== 'idle'
      || Array.from(panel.content.model.cells).some(c => c.type === 'code' && c.executionState === 'running');
    quietSince = busy ? null : (quietSince === null ? Date.now() : quietSince);
    if (quietSince !== null && Date.now() - quietSince >= quietMs) return true;
  }
  return false;
}"""
# Run > Run All Cells, by the command's name (clicking the menu by its text can hit a notebook's own text). Its
# promise alone does not say when the run ends: it settles at the first error, even in a cell tagged
# `raises-exception`, while the cells after it still run.
_RUN_ALL = f"""async ([path, timeoutMs]) => {{
  const panel = {_PANEL};
  await panel.context.ready;
  await panel.sessionContext.ready;
  let settled = false;
  window.jupyterapp.commands.execute('notebook:run-all-cells').finally(() => {{ settled = true; }});
  const done = await ({_QUIET})(panel, timeoutMs, 2000, () => settled);
  return {{done, notebook: panel.context.model.toJSON()}};
}}"""
_WAIT_QUIET = f"""async ([path, timeoutMs, quietMs]) => {{
  const panel = {_PANEL};
  return await ({_QUIET})(panel, timeoutMs, quietMs, () => true);
}}"""


def find_chromium() -> str | None:
    """The path of a Chromium to drive: ``$CHROMIUM``, Debian's ``chromium``, or playwright's own download.

    Returns:
        An executable path, or None when there is none (or when the ``playwright`` package is missing,
        for playwright's own browser).
    """
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as p:
        path = p.chromium.executable_path  # where `playwright install chromium` puts it
    return path if os.access(path, os.X_OK) else None


def write_lab_settings(home: str | Path) -> dict[str, str]:
    """Make ``home`` a fresh Jupyter home for a headless run; return the environment variables that use it.

    JupyterLab 4 renders only the cells near the viewport by default (``windowingMode: "full"``), so a test
    that reads outputs from the page would miss the others: ``"none"`` renders every cell. ``fetchNews``
    off: no "Would you like to get notified about official Jupyter news?" pop-up.
    """
    home = Path(home)
    settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
    for name, value in (("notebook-extension/tracker", {"windowingMode": "none"}),
                        ("apputils-extension/notification", {"fetchNews": "false"})):
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")
    return {"HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
            "JUPYTER_DATA_DIR": str(home / ".local" / "share" / "jupyter"),
            "JUPYTER_RUNTIME_DIR": str(home / ".runtime")}


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 serving ``root``, with its own temporary ``home``; a context manager.

    Args:
        root: the folder JupyterLab shows (give it copies: JupyterLab saves the notebooks it opens).
        home: an empty folder for HOME and the Jupyter settings (:func:`write_lab_settings`).
        log: the file that receives the server's output.
        timeout: seconds to wait for the server to answer.

    Example:
        >>> with JupyterLab(root, home, log) as lab:  # doctest: +SKIP
        ...     page.goto(lab.url("00_setup.ipynb"))
    """

    def __init__(self, root: str | Path, home: str | Path, log: str | Path, *, timeout: float = 60.0) -> None:
        self.root, self.home, self.log, self.timeout = Path(root), Path(home), Path(log), timeout
        self.token = secrets.token_hex(16)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> JupyterLab:
        env = dict(os.environ, **write_lab_settings(self.home))
        settings = self.home / ".jupyter" / "lab"
        command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   f"--LabApp.user_settings_dir={settings / 'user-settings'}",
                   f"--LabApp.workspaces_dir={settings / 'workspaces'}",
                   "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--LabApp.expose_app_in_browser=True"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.root)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.api("status")
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    tail = self.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"JupyterLab did not start (log {self.log}):\n{tail}") from None
                time.sleep(0.25)

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # JupyterLab shuts its kernels down on SIGTERM
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, endpoint: str, method: str = "GET") -> object:
        """Call the server's REST API (``/api/<endpoint>``); return the decoded JSON, or None."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/{endpoint}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def url(self, path: str, *, workspace: str = "default") -> str:
        """The address that opens ``path`` (relative to ``root``) alone: ``?reset`` restores no earlier tab."""
        return f"http://127.0.0.1:{self.port}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        """Stop every kernel this server started."""
        for kernel in self.api("kernels") or []:
            self.api(f"kernels/{kernel['id']}", method="DELETE")


def open_notebook(page, lab: JupyterLab, path: str, *, timeout_s: float = 120.0) -> None:
    """Open ``path`` in ``page`` in a workspace of its own, with the file browser closed; wait for its kernel."""
    page.goto(lab.url(path, workspace=Path(path).stem.replace(".", "-")))
    page.wait_for_function("path => window.jupyterapp && Array.from(window.jupyterapp.shell.widgets('main'))"
                           ".some(w => w.context && w.context.path === path && w.sessionContext.session"
                           " && w.sessionContext.session.kernel)", arg=path, timeout=timeout_s * 1000)
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")


def run_all(page, path: str, *, timeout_s: float) -> tuple[bool, dict]:
    """Run > Run All Cells in the open notebook ``path`` and wait until its kernel is idle.

    Returns:
        (finished within ``timeout_s``, the notebook as JupyterLab holds it: nbformat JSON with outputs).
    """
    result = page.evaluate(_RUN_ALL, [path, timeout_s * 1000])
    return result["done"], result["notebook"]


def wait_until_quiet(page, path: str, *, quiet_s: float = 1.5, timeout_s: float = 60.0) -> bool:
    """Wait until the kernel of the open notebook ``path`` has been idle for ``quiet_s`` (e.g. after a slider
    moved: each move is a message to the kernel, which redraws); False if it was still busy after ``timeout_s``."""
    return page.evaluate(_WAIT_QUIET, [path, timeout_s * 1000, quiet_s * 1000])


def screenshot_notebook(page, path: str | Path) -> Path:
    """A screenshot of the whole notebook: the window is made as tall as the notebook, then restored."""
    scroller = ".jp-MainAreaWidget:not(.lm-mod-hidden) .jp-WindowedPanel-outer"  # the notebook's scrolling box
    height = page.evaluate("""scroller => {
      const box = document.querySelector(scroller);
      return box ? window.innerHeight + box.scrollHeight - box.clientHeight : window.innerHeight;
    }""", scroller)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(int(height), SCREENSHOT_MAX_HEIGHT)})
    try:
        page.wait_for_timeout(500)  # let JupyterLab lay the taller window out
        page.evaluate("s => { const box = document.querySelector(s); if (box) box.scrollTop = 0; }", scroller)
        page.wait_for_timeout(200)
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(VIEWPORT)
    return Path(path)


def main(argv: list[str]) -> int:
    """``lab_browser.py OUT_DIR NOTEBOOK...``: run each copy, screenshot it, print a summary per notebook."""
    import tempfile

    from playwright.sync_api import sync_playwright

    if len(argv) < 2:
        print("usage: python tools/lab_browser.py OUT_DIR NOTEBOOK.ipynb [NOTEBOOK.ipynb ...]", file=sys.stderr)
        return 2
    names = [Path(notebook).name for notebook in argv[1:]]
    if len(set(names)) < len(names):
        print("give notebooks with different file names (they are copied into one folder)", file=sys.stderr)
        return 2
    out = Path(argv[0]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium found: apt-get install chromium (or set CHROMIUM=/path/to/chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp, "root"), Path(tmp, "home")
        root.mkdir()
        for notebook in argv[1:]:
            shutil.copy(notebook, root)
        with JupyterLab(root, home, out / "jupyterlab.log") as lab, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
            for notebook in argv[1:]:
                name, start = Path(notebook).name, time.monotonic()
                page = browser.new_page(viewport=VIEWPORT)
                open_notebook(page, lab, name)
                done, nb = run_all(page, name, timeout_s=1800)
                shot = screenshot_notebook(page, out / f"{Path(name).stem}.png")
                errors = [f"cell {i}: {o['ename']}: {o['evalue']}"[:200] for i, cell in enumerate(nb["cells"])
                          for o in cell.get("outputs", []) if o["output_type"] == "error"]
                print(json.dumps({"notebook": notebook, "finished": done, "seconds": round(time.monotonic() - start, 1),
                                  "errors": errors, "images": page.locator(".jp-OutputArea-output img").count(),
                                  "sliders": page.locator(".jp-OutputArea-output .widget-slider").count(),
                                  "progress_bars": page.locator(".jp-OutputArea-output .widget-hprogress").count(),
                                  "screenshot": str(shot)}))
                page.close()
                lab.shutdown_kernels()
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
