"""Benchmark of jurisdiction (属地): accuracy and throughput on the demo city's generated address test set.

Run: ``.venv/bin/python bench/jurisdiction.py [--n 5000] [--seed 7]``. The city is ``generate_city(2026)``
and the cases come from :func:`minsheng.demo.texts.jurisdiction_test_set` (address text with aliases and
noise; about 40% also carry a map point). The resolver is built the way the triage service builds it: areas with
their polygons and aliases, named places attached to the grid that holds them. Three modes:

- ``text``: cases without a point, resolved from the address text alone;
- ``point``: cases with a point, resolved from the point alone (expected: the grid that holds it);
- ``combined``: every case, text and point together, as intake does;
- ``detail``: no address and no point, only the request's title and detail naming the place in a sentence
  (:func:`minsheng.demo.texts.detail_jurisdiction_test_set`), read as intake reads them. A result counts only
  when its confidence reaches the triage gate (``TriageConfig.jurisdiction_min_confidence``); coverage is the
  share of cases that give one, precision the share of those that are right, and the false-positive rate is
  the share of requests naming no place at all (only 小区, 街道, 路灯 …) that still get an area.

A case counts as correct when the resolved area code equals the expected one exactly. Target for the address
and point modes: ≥ 0.98. Results go to bench/results/jurisdiction.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

try:
    from minsheng.demo.city import DemoCity, generate_city
except ModuleNotFoundError:  # a checkout whose editable install predates the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from minsheng.demo.city import DemoCity, generate_city
from minsheng.demo.texts import detail_jurisdiction_test_set, jurisdiction_test_set
from minsheng.services.triage.settings import TriageConfig
from minsheng.triage.jurisdiction import AreaRecord, Jurisdiction, PlaceRecord

TARGET = 0.98
RESULTS = Path(__file__).resolve().parent / "results" / "jurisdiction.json"
Case = tuple[str, str, float | None, float | None]
DetailCase = tuple[str, str, str | None]
GATE = TriageConfig().jurisdiction_min_confidence


def build(city: DemoCity) -> Jurisdiction:
    areas = [
        AreaRecord(a.code, a.name, a.level, a.parent_code, tuple(a.aliases), a.polygon)  # type: ignore[arg-type]
        for a in city.areas
    ]
    # As the triage service stores them: a place belongs to the grid that holds it (its most precise area).
    places = [
        PlaceRecord(f"p{i}", p.name, p.grid_code, p.kind, tuple(p.aliases)) for i, p in enumerate(city.places)
    ]
    return Jurisdiction(areas, places)


def run(j: Jurisdiction, cases: list[Case], mode: str) -> dict[str, Any]:
    correct = 0
    misses: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    started = time.perf_counter()
    for text, expected, lat, lon in cases:
        if mode == "text":
            got = j.resolve(text)
        elif mode == "point":
            got = j.resolve(None, lat, lon)
        else:
            got = j.resolve(text, lat, lon)
        if got is not None and got.area_code == expected:
            correct += 1
            continue
        why = "none" if got is None else ("coarser" if expected.startswith(got.area_code) else "wrong")
        misses[why] += 1
        if len(examples) < 10:
            examples.append(
                {
                    "text": text,
                    "expected": expected,
                    "got": got.area_code if got else None,
                    "lat": lat,
                    "lon": lon,
                    "explanation": got.explanation if got else None,
                }
            )
    seconds = time.perf_counter() - started
    n = len(cases)
    resolved = n - misses["none"]
    return {
        "mode": mode,
        "n": n,
        "accuracy": round(correct / n, 4) if n else None,
        "coverage": round(resolved / n, 4) if n else None,
        "precision": round(correct / resolved, 4) if resolved else None,
        "misses": dict(misses),
        "per_second": round(n / seconds, 1) if seconds else None,
        "ms_per_case": round(1000 * seconds / n, 3) if n else None,
        "examples": examples,
    }


def run_detail(j: Jurisdiction, cases: list[DetailCase]) -> dict[str, Any]:
    """The ``detail`` mode: title and detail only, results below the triage gate count as none."""
    correct = resolved = false_positives = n_nowhere = 0
    misses: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    false_examples: list[dict[str, Any]] = []
    started = time.perf_counter()
    for title, detail, expected in cases:
        got = j.resolve(detail_text=f"{title}\n{detail}")
        used = got if got is not None and got.confidence >= GATE else None
        if expected is None:
            n_nowhere += 1
            if used is not None:
                false_positives += 1
                if len(false_examples) < 10:
                    false_examples.append({"text": f"{title}｜{detail}", "explanation": used.explanation})
            continue
        if used is not None:
            resolved += 1
            if used.area_code == expected:
                correct += 1
                continue
        why = "none" if used is None else ("coarser" if expected.startswith(used.area_code) else "wrong")
        misses[why] += 1
        if len(examples) < 10:
            examples.append(
                {
                    "text": f"{title}｜{detail}",
                    "expected": expected,
                    "got": used.area_code if used else None,
                    "explanation": got.explanation if got else None,
                }
            )
    seconds = time.perf_counter() - started
    n = len(cases) - n_nowhere
    return {
        "mode": "detail",
        "n": n,
        "accuracy": round(correct / n, 4) if n else None,
        "coverage": round(resolved / n, 4) if n else None,
        "precision": round(correct / resolved, 4) if resolved else None,
        "n_nowhere": n_nowhere,
        "false_positive_rate": round(false_positives / n_nowhere, 4) if n_nowhere else None,
        "misses": dict(misses),
        "per_second": round(len(cases) / seconds, 1) if seconds else None,
        "ms_per_case": round(1000 * seconds / len(cases), 3) if cases else None,
        "examples": examples,
        "false_positive_examples": false_examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="number of generated cases (default 5000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the test set (default 7)")
    parser.add_argument("--city-seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    console = Console()
    city = generate_city(args.city_seed)
    cases = jurisdiction_test_set(city, args.n, seed=args.seed)
    started = time.perf_counter()
    j = build(city)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    # jieba's dictionary and the private tokenizer load on first use: keep that out of the per-case timings.
    for text, _, _, _ in cases[:20]:
        j.resolve(text)
    warm_seconds = time.perf_counter() - started
    with_point = [c for c in cases if c[2] is not None]
    without_point = [c for c in cases if c[2] is None]
    results = [run(j, without_point, "text"), run(j, with_point, "point"), run(j, cases, "combined")]
    detail_cases = detail_jurisdiction_test_set(city, args.n, seed=args.seed)
    results.append(run_detail(j, detail_cases))

    table = Table(title=f"Jurisdiction on the demo city ({len(city.areas)} areas, {len(city.places)} places)")
    columns = ("mode", "cases", "accuracy", "coverage", "precision", "false pos.", "none", "coarser", "wrong")
    for col in (*columns, "cases/s", "ms/case"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for r in results:
        ok = r["mode"] == "detail" or (r["accuracy"] is not None and r["accuracy"] >= TARGET)
        fp = r.get("false_positive_rate")
        table.add_row(
            r["mode"],
            str(r["n"]),
            f"[{'green' if ok else 'red'}]{r['accuracy']:.4f}[/]",
            f"{r['coverage']:.4f}",
            f"{r['precision']:.4f}",
            f"{fp:.4f} of {r['n_nowhere']}" if fp is not None else "",
            str(r["misses"].get("none", 0)),
            str(r["misses"].get("coarser", 0)),
            str(r["misses"].get("wrong", 0)),
            f"{r['per_second']:,.0f}",
            f"{r['ms_per_case']:.3f}",
        )
    console.print(table)
    console.print(
        f"build (gazetteer + polygon index): {build_seconds:.2f} s; first use (jieba, tokenizer): "
        f"{warm_seconds:.2f} s; target accuracy ≥ {TARGET} (address and point modes); detail results count "
        f"from confidence ≥ {GATE}"
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "jurisdiction",
        "city_seed": args.city_seed,
        "test_seed": args.seed,
        "n": args.n,
        "areas": len(city.areas),
        "places": len(city.places),
        "build_seconds": round(build_seconds, 3),
        "warm_up_seconds": round(warm_seconds, 3),
        "target": TARGET,
        "results": results,
        "detail_gate": GATE,
        "meets_target": all(
            r["accuracy"] is not None and r["accuracy"] >= TARGET for r in results if r["mode"] != "detail"
        ),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    console.print(f"written {args.out}")


if __name__ == "__main__":
    main()
