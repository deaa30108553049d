"""Small helpers shared by the benchmarks: where the shared data is, single-thread pinning, a Rich table, and
writing results as JSON (with machine information and a timestamp) to ``bench/results/NAME.json``."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"

if str(ROOT) not in sys.path:
    # Benchmarks run as scripts (python bench/x.py); make the package importable without installing it.
    sys.path.insert(0, str(ROOT))


def machine_info() -> dict[str, Any]:
    """What the figures were measured on, so results from different machines are not compared blindly."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


@contextmanager
def single_thread() -> Iterator[None]:
    """Limit BLAS/OpenMP pools to one thread inside the block (for per-core throughput figures)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


def skip(reason: str) -> None:
    """Print why the benchmark did not run and exit with status 0 (absent data is not a failure)."""
    print(f"skipped: {reason}")
    raise SystemExit(0)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows as a Rich table; floats are shown with 4 significant decimals."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console = Console()
    if not console.is_terminal:
        # Piped output (CI logs, files) defaults to 80 columns, which truncates the figures.
        console = Console(width=160)
    console.print(table)


def write_results(name: str, results: Mapping[str, Any], *, directory: Path | None = None) -> Path:
    """Write ``results`` with machine info and a UTC timestamp to ``bench/results/<name>.json``."""
    directory = directory or RESULTS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    payload = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        **results,
    }
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path
