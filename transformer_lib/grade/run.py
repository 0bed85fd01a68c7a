"""Runs one graded notebook in a fresh kernel: ``python transformer_lib/grade/run.py JOB.json`` (internal).

``python -m transformer_lib.grade`` starts this process once per submission, in a new session and a temporary
working directory that holds nothing but that submission's files. It first lowers its own resource limits
(address space, CPU time, file size, no core files), which the kernel it starts inherits, then runs the cells
of the notebook that :mod:`transformer_lib.grade.notebook` built, one by one, with nbclient:

* if a cell runs longer than the cell timeout, or the kernel dies (``os._exit``, a crash, the memory or CPU
  limit), the kernel is stopped and the run starts again in a fresh kernel with the exercise to blame
  replaced by its stub (or, for any other cell, without that cell), so the other exercises are still graded
  and the later cells that call the looping function do not each wait for the timeout; at most ``MAX_RUNS``
  runs;
* outputs are cut as they arrive (``MAX_CELL_OUTPUT`` characters of text per cell, no images), so a cell that
  prints 100 MB does not fill the grader's memory.

After every cell it rewrites ``result.json`` in the working directory: the errors and printed text of each
cell, and the deaths, so that what finished is known even if the grader kills this process at the
notebook's time limit. The wall-clock limit for the whole notebook is enforced by the grader, which kills
this process and every process under it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

__all__ = ["run_job", "set_limits", "current_env_kernel", "MAX_CELL_OUTPUT", "MAX_RUNS", "TIMEOUT"]

MAX_RUNS = 4
MAX_CELL_OUTPUT = 20_000  # characters of printed text kept per cell
TIMEOUT = "this exercise or its check ran longer than"
_CUT = "\n[... output cut by the grader ...]\n"


def set_limits(memory_mb: int | None, cpu_seconds: int | None, file_mb: int = 512) -> list[str]:
    """Lower this process's limits (children inherit them); return the ones this system refused."""
    try:
        import resource
    except ImportError:  # Windows
        return ["all (no resource module)"]
    refused = []
    limits = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, file_mb * 2**20)]
    if memory_mb:
        limits.append((resource.RLIMIT_AS, memory_mb * 2**20))
    if cpu_seconds:
        limits.append((resource.RLIMIT_CPU, cpu_seconds))
    for kind, value in limits:
        soft, hard = resource.getrlimit(kind)
        new = value if hard == resource.RLIM_INFINITY else min(value, hard)
        extra = 5 if kind == resource.RLIMIT_CPU else 0  # SIGXCPU at the soft limit, SIGKILL 5 s later
        try:
            resource.setrlimit(kind, (new, new + extra if hard == resource.RLIM_INFINITY else hard))
        except (ValueError, OSError):
            refused.append({resource.RLIMIT_AS: "memory", resource.RLIMIT_CPU: "CPU time"}.get(kind, str(kind)))
    return refused


class _Client(NotebookClient):
    """nbclient, keeping at most MAX_CELL_OUTPUT characters of text per cell and no rich outputs."""

    def output(self, outs, msg, display_id, cell_index):  # noqa: D102 - nbclient's hook
        content = msg["content"]
        if msg["msg_type"] == "stream":
            used = sum(len(o.get("text", "")) for o in outs if o.get("output_type") == "stream")
            room = MAX_CELL_OUTPUT - used
            if room <= 0:
                return None
            if len(content.get("text", "")) > room:
                content["text"] = content["text"][:room] + _CUT
        elif msg["msg_type"] in ("display_data", "execute_result", "update_display_data"):
            content["data"] = {"text/plain": str(content.get("data", {}).get("text/plain", ""))[:2000]}
        elif msg["msg_type"] == "error":
            content["evalue"] = str(content.get("evalue", ""))[:MAX_CELL_OUTPUT]
            content["traceback"] = [str(line)[:2000] for line in content.get("traceback", [])[-40:]]
        return super().output(outs, msg, display_id, cell_index)


def current_env_kernel():
    """A kernel in this very Python (like nbval's --nbval-current-env), whatever kernel the notebook names."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class CurrentEnv(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                          **ipykernel.kernelspec.get_kernel_dict())

    return AsyncKernelManager(kernel_spec_manager=CurrentEnv(), kernel_name="current-env")


def _record(cell) -> dict:
    """What a cell left behind: its error (if any) and the text it printed."""
    record: dict = {"stdout": "".join(o.get("text", "") for o in cell.outputs
                                      if o.get("output_type") == "stream" and o.get("name") == "stdout")}
    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
    if errors:
        record.update(ename=errors[-1].get("ename", ""), evalue=errors[-1].get("evalue", ""))
    return record


def _exit_reason(km) -> str:
    process = getattr(getattr(km, "provisioner", None), "process", None)
    try:
        code = process.wait(timeout=5) if process is not None else None
    except subprocess.TimeoutExpired:
        code = None
    if code is None:
        return "the kernel stopped answering"
    if code < 0:
        name = signal.Signals(-code).name
        why = {"SIGXCPU": " (the CPU time limit)", "SIGKILL": " (killed: out of memory or the CPU time limit)",
               "SIGXFSZ": " (the file size limit)", "SIGSEGV": " (a crash)"}.get(name, "")
        return f"the kernel was stopped by {name}{why}"
    return f"the kernel exited with code {code} (os._exit, sys.exit in a thread, or a crash)"


async def _run_once(cells: list, job: dict, result: dict, out: Path) -> tuple[int, str] | None:
    """Run ``cells`` in a fresh kernel; return (index, reason) of the cell that stopped it, or None."""
    nb = nbformat.v4.new_notebook(cells=cells)
    client = _Client(nb, km=current_env_kernel(), timeout=job["cell_timeout"], allow_errors=True, iopub_timeout=2,
                     store_widget_state=False, record_timing=False, startup_timeout=120, shutdown_kernel="immediate")
    async with client.async_setup_kernel(cwd=job["cwd"], stderr=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, cleanup_kc=True):
        for index, cell in enumerate(cells):
            try:
                await client.async_execute_cell(cell, index)
            except DeadKernelError:
                return index, _exit_reason(client.km)
            except CellTimeoutError:
                return index, f"{TIMEOUT} {job['cell_timeout']} s (--timeout-cell)"
            result["records"][cell.metadata["grading"]["key"]] = _record(cell)
            _write(out, result)
    return None


def _write(out: Path, result: dict) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    tmp.replace(out)


def _blame(cells: list, index: int) -> str | None:
    """The exercise a death in cell ``index`` is blamed on: its own cell, or the check (and hidden cells) after it."""
    info = cells[index].metadata["grading"]
    return info.get("exercise") if info["role"] in ("exercise", "guard", "check", "verify") else None


async def run_job(job: dict) -> dict:
    """Run the job's notebook, restarting after a kernel death; return (and keep writing) the result."""
    out = Path(job["cwd"]) / "result.json"
    cells = nbformat.read(job["notebook"], as_version=4).cells
    for i, cell in enumerate(cells):
        cell.metadata["grading"]["key"] = str(i)  # records are keyed by position in the full notebook
    result: dict = {"records": {}, "deaths": [], "finished": False, "refused": job.get("refused", [])}
    dead: set[str] = set()
    skipped: set[str] = set()
    for _ in range(MAX_RUNS):
        todo = []
        for cell in cells:
            info = cell.metadata["grading"]
            if info["key"] in skipped or (info.get("exercise") in dead and info["role"] != "exercise"):
                continue
            if info.get("exercise") in dead:  # the exercise that killed the kernel: its stub instead
                cell = nbformat.v4.new_code_cell(info["stub"], metadata={"grading": info})
            todo.append(cell)
        death = await _run_once(todo, job, result, out)
        if death is None:
            result["finished"] = True
            break
        index, reason = death
        blamed = _blame(todo, index)
        key = todo[index].metadata["grading"]["key"]
        result["deaths"].append({"key": key, "exercise": blamed, "reason": reason})
        if blamed:
            dead.add(blamed)
        else:
            skipped.add(key)
        _write(out, result)
    _write(out, result)
    return result


def main(argv: list[str] | None = None) -> int:
    job = json.loads(Path((argv or sys.argv[1:])[0]).read_text(encoding="utf-8"))
    job["refused"] = set_limits(job.get("memory_mb"), job.get("cpu_seconds"))
    asyncio.run(run_job(job))
    return 0


if __name__ == "__main__":
    sys.exit(main())
