"""The report of ``ddim-book bench``: the machine, the run that measured each section, and the Markdown tables
(``bench.md``, and the results blocks of ``BENCHMARKS.md``)."""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

import torch

from ddim_book._io import atomic_write_text

DOC_START, DOC_END = "<!-- bench-results:start -->", "<!-- bench-results:end -->"


def section(title: str, columns: dict, rows: list[dict], targets=(), notes=()) -> dict:
    """A report section: flat ``rows`` of measured numbers shown as a table of ``{row key: column heading}``."""
    return {"title": title, "columns": columns, "rows": rows, "targets": list(targets), "notes": list(notes)}


def target(what: str, value: float, holds: bool) -> list:
    """A row of the targets table: what is asked, the measured figure, and whether it holds."""
    return [what, round(value, 4), "holds" if holds else "does not hold"]


# ----- machine and run --------------------------------------------------------------------------------
def diffusers_version() -> str | None:
    """The installed diffusers version, or None when it cannot be imported."""
    try:
        import diffusers
    except Exception:  # not installed, or broken by a missing dependency: either way, skip
        return None
    return diffusers.__version__


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info(device: torch.device) -> dict:
    """CPU model (from /proc/cpuinfo), cores, torch and diffusers versions, threads and the device name."""
    cpu = platform.processor() or "unknown"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return info | {"diffusers": diffusers_version(), "python": platform.python_version(), "gpu": gpu}


def run_info(device: torch.device, settings, command: str) -> dict:
    """What each section records about the run that measured it."""
    import dataclasses

    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    info = {"id": time.time_ns(), "started": started, "command": command, "settings": dataclasses.asdict(settings)}
    return info | {"device": str(device), "machine": machine_info(device), "load_average_start": load_average()}


def _cell(v) -> str:
    if isinstance(v, float):  # ratios near 1 keep three decimals: 1.03 is a target
        return f"{v:.3f}" if 0.1 <= abs(v) < 10 else f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**4:
        return f"{v:,}"
    return "" if v is None else str(v)


def _render_section(sec: dict, run_number) -> list[str]:
    cols = sec["columns"]
    out = [f"### {sec['title']}" + (f" (run {run_number})" if run_number else ""), ""]
    if cols:
        out += ["| " + " | ".join(cols.values()) + " |", "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(_cell(row.get(k)) for k in cols) + " |" for row in sec["rows"]] + [""]
    return out + [note + "\n" for note in sec["notes"]]


def render_markdown(results: dict) -> str:
    """The report of ``results`` (what :func:`ddim_book.bench.run_bench` returns) as Markdown."""
    sections = [v for v in results.values() if isinstance(v, dict) and "title" in v]
    runs = {run_id: i + 1 for i, run_id in enumerate(sorted({sec["run"]["id"] for sec in sections}))}
    m = results.get("machine", {})
    out = [f"Machine: {m.get('cpu')}, {m.get('cores')} cores; torch {m.get('torch')} ({m.get('threads')} CPU threads); "
           f"diffusers {m.get('diffusers') or 'not installed'}; GPU: {m.get('gpu') or 'none'}.", ""]  # fmt: skip
    for run_id, n in runs.items():
        run = next(sec["run"] for sec in sections if sec["run"]["id"] == run_id)
        model = run.get("model", {})
        out.append(f"- run {n}: {run['started']} on {run['device']}, `{run['command']}`; the {model.get('config')} "
                   f"U-Net ({model.get('parameters', 0):,} parameters); load average (1, 5, 15 min) "
                   f"{run['load_average_start']} at the start, {run.get('load_average_end')} at the end")  # fmt: skip
    out.append("")
    for sec in sections:
        for part in [sec, *sec.get("more", [])]:
            out += _render_section(part, runs[sec["run"]["id"]])
    targets = [row for sec in sections for row in sec["targets"]]
    if targets:
        columns = {"what": "target", "value": "measured", "verdict": "verdict"}
        rows = [dict(zip(columns, row)) for row in targets]
        out += _render_section({"title": "Targets", "columns": columns, "rows": rows, "notes": []}, None)
    return "\n".join(out).rstrip()


def check_doc(path, start: str, end: str) -> None:
    """ValueError unless ``path`` is a Markdown file holding the marker lines ``start`` and ``end``: checked before a
    long measurement, so that its results are not lost to a wrong ``--doc``."""
    doc = Path(path).read_text() if Path(path).is_file() else ""
    if start not in doc or end not in doc:
        raise ValueError(f"--doc {path} must be a file with the lines {start} and {end}")


def update_doc(path, text: str, start: str = DOC_START, end: str = DOC_END) -> None:
    """Replace what lies between the marker lines ``start`` and ``end`` of the Markdown file ``path`` with ``text``."""
    path = Path(path)
    doc = path.read_text()
    if start not in doc or end not in doc:
        raise ValueError(f"{path} must contain the lines {start} and {end} around the results block")
    before, rest = doc.split(start, 1)
    atomic_write_text(path, f"{before}{start}\n{text}\n{end}{rest.split(end, 1)[1]}")
