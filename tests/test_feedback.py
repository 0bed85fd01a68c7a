"""What a student sees in JupyterLab when a check fails, and the interactive figures: a real kernel runs a
notebook and the tests read the outputs it stores (the error output's ``traceback`` is exactly what the
browser renders, ANSI colours aside)."""

from __future__ import annotations

import re
import subprocess

import nbformat
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

CELLS = {
    "setup": "import torch\nfrom torch import nn\nfrom transformer_lib import checks, interactive_plot",
    "unfinished": (
        "def softmax(x, dim=-1):\n"
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError()\n"
        "checks.check_softmax(softmax)"
    ),
    "wrong": (
        "def softmax(x, dim=-1):\n"
        "    e = (x - x.amax(dim=0, keepdim=True)).exp()\n"
        "    return e / e.sum(dim=0, keepdim=True)\n"
        "checks.check_softmax(softmax)"
    ),
    "raises": (
        "def softmax(x, dim=-1):\n"
        "    e = x.exp()\n"
        "    return e / e.sum(dim=dim)[:, None, None]\n"
        "checks.check_softmax(softmax)"
    ),
    "module_raises": (  # the student's error is inside their module, called through torch's nn.Module machinery
        "class FeedForward(nn.Module):\n"
        "    def __init__(self, d_model, d_ff, dropout=0.0):\n"
        "        super().__init__()\n"
        "        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)\n"
        "    def forward(self, x):\n"
        "        return self.linear2(self.linear1(x).relu().T)\n"
        "checks.check_feed_forward(FeedForward)"
    ),
    "still_an_assertion": (
        "try:\n"
        "    checks.check_softmax(lambda x, dim=-1: x)\n"
        "except AssertionError as err:\n"
        "    print('caught as AssertionError:', type(err).__name__)"
    ),
    "plot": (
        "import ipywidgets as widgets, matplotlib.pyplot as plt\n"
        "slider = widgets.FloatSlider(value=1.0, min=0.0, max=5.0)\n"
        "def draw(beta):\n"
        "    fig, ax = plt.subplots(figsize=(2, 2))\n"
        "    ax.bar(range(3), torch.softmax(beta * torch.tensor([2.0, 4.0, 4.0]), dim=-1))\n"
        "    ax.set_title(f'beta = {beta}')\n"
        "    return fig\n"
        "interactive_plot(draw, beta=slider)"
    ),
    "move_slider": "slider.value = 4.0",
}


@pytest.fixture(scope="module")
def run() -> dict[str, nbformat.NotebookNode]:
    """Execute CELLS in one kernel; return each cell, with the outputs it stored, by name."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute(stderr=subprocess.DEVNULL)
    return dict(zip(CELLS, nb.cells))


def error_lines(cell) -> tuple[str, list[str]]:
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    return error.ename, ANSI.sub("", "\n".join(error.traceback)).splitlines()


def test_unfinished_exercise_is_one_line(run):
    ename, lines = error_lines(run["unfinished"])
    assert ename == "ExerciseNotDone"
    assert lines == ["ExerciseNotDone: the exercise is not done yet: write `softmax` in place of "
                     "`raise NotImplementedError()`, run its cell, then this one"]


def test_wrong_answer_is_the_diagnosis_and_expected_vs_got(run):
    ename, lines = error_lines(run["wrong"])
    assert ename == "CheckFailed"
    assert len(lines) == 3, lines
    assert lines[0].startswith("CheckFailed: softmax: case '2-D, dim=-1' (2 of 7): softmax over the wrong axis")
    assert "expected" in lines[1] and "got" in lines[2]
    assert not any("Traceback" in line or ".py" in line for line in lines)  # no frame of the checker


def test_students_own_error_shows_their_frames_only(run):
    ename, lines = error_lines(run["raises"])
    assert ename == "CheckFailed"
    text = "\n".join(lines)
    assert lines[0].startswith("CheckFailed: softmax: case 'worked example [2, 4, 4]' (1 of 7): your code raised "
                               "IndexError")
    assert "return e / e.sum(dim=dim)[:, None, None]" in text  # their line, with its context
    assert "Cell In[" in text
    assert "transformer_lib" not in text and "Traceback" not in text
    assert lines[-1] == "IndexError: too many indices for tensor of dimension 0"
    assert len(lines) <= 10, text


def test_error_inside_a_module_hides_torch_frames(run):
    ename, lines = error_lines(run["module_raises"])
    text = "\n".join(lines)
    assert ename == "CheckFailed" and "your code raised RuntimeError" in lines[0]
    assert "in FeedForward.forward" in text and "self.linear1(x).relu().T" in text
    assert "torch/nn" not in text and "_call_impl" not in text
    assert len(lines) <= 12, text


def test_a_failed_check_is_still_an_assertion_error(run):
    assert run["still_an_assertion"].outputs[0].text == "caught as AssertionError: CheckFailed\n"


def test_interactive_plot_stores_a_static_figure_and_redraws_it_in_place(run):
    outputs = run["plot"].outputs
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(images) == 1 and len(widgets) == 1  # one figure (not drawn twice), one row of controls
    # Moving the slider in a later cell updated the figure of the earlier one (update_display_data):
    # nbclient applies the update to the stored output, as JupyterLab does on screen.
    assert run["move_slider"].outputs == []
    assert images[0].data["image/png"] != _first_png_at_beta_1()


def _first_png_at_beta_1() -> str:
    """The png the plot cell shows before the slider moves, drawn in a fresh kernel."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELLS["setup"]), nbformat.v4.new_code_cell(CELLS["plot"])]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute(stderr=subprocess.DEVNULL)
    return next(o.data["image/png"] for o in nb.cells[1].outputs if "image/png" in o.get("data", {}))
