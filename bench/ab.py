"""A/B: one benchmark run on a baseline commit and on the working tree, alternately, in the same session.

Usage:
    python bench/ab.py --base 2818f1c --rounds 3 -- pages.py --tickets 20000
    python bench/ab.py --base 2818f1c --rounds 3 -- intake.py --quick --backends sqlite

The baseline is checked out into a temporary git worktree; each round runs the benchmark there and here (the
order alternates, so drift on a shared machine falls on both sides), each writing its JSON. Every number in
the JSON results is compared by its median over the rounds: the table shows the medians and head/base, and
bench/results/ab-<script>.json keeps them all. The machine is noisy: read the ratios, not single times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
console = Console()


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON value by path; list items by their 'backend'/'triage_mode'/'page' if any."""
    out: dict[str, float] = {}
    if isinstance(value, bool):
        return out
    if isinstance(value, int | float):
        out[prefix] = float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k != "args":
                out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            label = i
            if isinstance(v, dict):
                parts = [str(v[k]) for k in ("backend", "triage_mode", "page", "path", "name") if k in v]
                label = "/".join(parts) or i  # type: ignore[assignment]
            out.update(flatten(v, f"{prefix}[{label}]"))
    return out


def result_file(tree: Path, script: str) -> Path:
    return tree / "bench" / "results" / (Path(script).stem + ".json")


def run(tree: Path, script: str, args: list[str]) -> dict[str, float]:
    target = result_file(tree, script)
    target.unlink(missing_ok=True)
    # A benchmark may exit non-zero when a figure misses its target; its figures still count here.
    done = subprocess.run([sys.executable, str(tree / "bench" / script), *args], cwd=tree, check=False)
    if not target.exists():
        raise SystemExit(f"{script} in {tree} wrote no results (exit {done.returncode})")
    return flatten(json.loads(target.read_text()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the baseline commit")
    ap.add_argument("--head", help="a commit to compare instead of the working tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", default="ms,rps,per_s,/s,ratio", help="comma-separated parts of keys to show")
    ap.add_argument("script")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    args = [x for x in a.args if x != "--"]
    runs: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), a.base], cwd=ROOT, check=True)
        head_tree = ROOT
        if a.head:
            head_tree = Path(tmp) / "head"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(head_tree), a.head], cwd=ROOT, check=True
            )
        try:
            for i in range(a.rounds):
                # Alternate who goes first, so that drift on a shared machine falls on both sides.
                order = [("base", base_tree), ("head", head_tree)]
                if i % 2:
                    order.reverse()
                for side, tree in order:
                    console.print(f"[bold]round {i + 1}/{a.rounds}: {side}[/]")
                    runs[side].append(run(tree, a.script, args))
        finally:
            for tree in {base_tree, head_tree} - {ROOT}:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    keys = sorted(set.intersection(*(set(r) for r in runs["base"] + runs["head"])))
    wanted = [k for k in keys if any(part in k for part in a.keys.split(","))]
    head = a.head or "working tree"
    table = Table(title=f"{a.script} {' '.join(args)}: base {a.base} vs {head}, medians of {a.rounds} rounds")
    for col in ("figure", "base", "head", "head/base"):
        table.add_column(col, justify="right" if col != "figure" else "left")
    summary: dict[str, dict[str, float | None]] = {}
    for k in wanted:
        b = statistics.median(r[k] for r in runs["base"])
        h = statistics.median(r[k] for r in runs["head"])
        ratio = h / b if b else None
        summary[k] = {"base": b, "head": h, "ratio": ratio}
        table.add_row(escape(k), f"{b:.2f}", f"{h:.2f}", f"{ratio:.2f}" if ratio is not None else "–")
    console.print(table)
    out = ROOT / "bench" / "results" / f"ab-{Path(a.script).stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"base": a.base, "head": head, "args": args, "rounds": a.rounds, "figures": summary}, indent=2
        )
    )
    console.print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
