"""Benchmark of repeat detection: build time, memory and query latency of RepeatIndex at 1,000,000 tickets.

Run: ``.venv/bin/python bench/repeats.py [--n 1000000] [--quick]``. Tickets are generated from templates,
spread over 1,000 areas and 30 days. The same 2,000 queries (half planted near-duplicates of indexed
tickets, half fresh texts) run against the full index and against a baseline index of its first tenth, so the
ratios show what size costs. Results go to bench/results/repeats.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

try:
    from minsheng.triage.repeats import RepeatIndex, normalize_text, shingles
except ModuleNotFoundError:  # a checkout whose editable install predates the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from minsheng.triage.repeats import RepeatIndex, normalize_text, shingles

START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 30
AREAS = 1000
QUERIES = 2000
TARGET_P95_MS = 5.0
RESULTS = Path(__file__).resolve().parent / "results" / "repeats.json"

ROADS = [
    *("幸福", "建设", "人民", "解放", "和平", "中山", "胜利", "光明", "友谊", "新华"),
    *("长江", "黄河", "朝阳", "东风", "文化", "复兴", "迎宾", "滨江", "学府", "青年"),
]
ROAD_KINDS = ["路", "大街", "街", "巷", "大道"]
PLACES = (
    *("阳光花园", "锦绣小区", "翠苑", "金色家园", "幸福里", "丽景湾", "绿洲小区"),
    *("康居苑", "新城小区", "世纪花园", "紫荆园", "华府", "名都"),
)
SPOTS = [
    "小区门口",
    "楼下",
    "东门",
    "北侧路边",
    "菜市场旁",
    "公交站附近",
    "学校门口",
    "地下车库",
    "十字路口",
    "广场",
]
PROBLEMS = [
    "垃圾堆放{d}天无人清理，气味很大，蚊蝇很多",
    "路灯不亮已经{d}天了，晚上出行很不安全",
    "下水道堵塞，污水外溢，行人无法通行",
    "有商户占道经营，每天晚上烧烤油烟扰民",
    "工地夜间施工噪音很大，凌晨{h}点还在作业",
    "井盖破损缺失，存在严重安全隐患，请尽快处理",
    "自来水停水{d}天，没有任何通知，生活很不方便",
    "电动车乱停乱放，堵塞消防通道",
    "楼上住户装修噪音扰民，周末早上{h}点就开始",
    "道路破损坑洼，下雨天积水严重，车辆无法通行",
    "流浪狗聚集，已经咬伤{d}名居民",
    "供暖温度只有{t}度，室内很冷，老人孩子受不了",
    "物业乱收停车费，每月多收{m}元，要求退还",
    "小区电梯经常故障，{d}天内停运三次，困人",
    "违章搭建彩钢房，占用公共绿地",
    "燃气管道有异味，担心泄漏，请派人检查",
    "公交车{n}路长时间不来，候车时间超过{m}分钟",
    "餐馆排放污水直接流入雨水管网",
    "绿化带树木倒伏压住电线，存在隐患",
    "共享单车大量堆积，占用人行道",
]
OPENERS = ["", "", "您好，", "你好，我要反映一下，", "市民来电反映：", "投诉：", "我想咨询一下，"]
CLOSERS = ["", "", "希望尽快解决。", "请相关部门处理。", "已经反映多次没人管。", "谢谢！", "盼复。"]


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket_id: str
    area_code: str
    text: str
    at: datetime


def make_text(rng: random.Random) -> str:
    problem = rng.choice(PROBLEMS).format(
        d=rng.randint(2, 15),
        h=rng.randint(1, 6),
        t=rng.randint(10, 17),
        m=rng.randint(20, 300),
        n=rng.randint(1, 99),
    )
    road = rng.choice(ROADS) + rng.choice(ROAD_KINDS)
    where = f"{road}{rng.randint(1, 300)}号{rng.choice(PLACES)}{rng.choice(SPOTS)}"
    return f"{rng.choice(OPENERS)}{where}{problem}。{rng.choice(CLOSERS)}"


def generate(n: int, seed: int) -> Iterator[Ticket]:
    rng = random.Random(seed)
    span = DAYS * 86400
    for i in range(n):
        yield Ticket(
            ticket_id=f"2026{i:09d}",
            area_code=f"AREA{rng.randrange(AREAS):04d}",
            text=make_text(rng),
            at=START + timedelta(seconds=rng.randrange(span)),
        )


def perturb(text: str, rng: random.Random) -> str:
    """A citizen calling again about the same thing: other greeting, a few characters changed or dropped."""
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(chars))
        op = rng.random()
        if op < 0.4:
            del chars[pos]
        elif op < 0.7:
            chars.insert(pos, rng.choice("的了啊很又还"))
        else:
            chars[pos] = rng.choice("这那有没大小")
    body = "".join(chars)
    return rng.choice(OPENERS) + body + rng.choice(["", "再次反映！", "还是没解决。"])


def jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(normalize_text(a)).tolist()), set(shingles(normalize_text(b)).tolist())
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def build(n: int, seed: int) -> tuple[RepeatIndex, dict[str, float]]:
    gc.collect()
    rss0 = rss_bytes()
    index = RepeatIndex(window_days=30, threshold=0.6)
    t0 = time.perf_counter()
    for t in generate(n, seed):
        index.add(t.ticket_id, t.area_code, t.text, t.at)
    # The generator's own cost is included: it is small next to add() and keeps the texts out of memory.
    elapsed = time.perf_counter() - t0
    gc.collect()
    rss = rss_bytes() - rss0
    return index, {
        "n": n,
        "build_s": elapsed,
        "adds_per_s": n / elapsed,
        "rss_mb": rss / 2**20,
        "rss_bytes_per_ticket": rss / n,
        "array_mb": index.memory_bytes() / 2**20,
    }


def make_queries(sources: list[Ticket], seed: int) -> list[tuple[str, str, datetime, str | None, float]]:
    """(text, area, at, planted source id or None, true Jaccard to the source)."""
    rng = random.Random(seed + 1)
    queries: list[tuple[str, str, datetime, str | None, float]] = []
    for src in rng.sample(sources, QUERIES // 2):
        text = perturb(src.text, rng)
        queries.append(
            (
                text,
                src.area_code,
                src.at + timedelta(hours=rng.randint(0, 48)),
                src.ticket_id,
                jaccard(text, src.text),
            )
        )
    fresh = random.Random(seed + 2)
    for _ in range(QUERIES - QUERIES // 2):
        queries.append(
            (
                make_text(fresh),
                f"AREA{fresh.randrange(AREAS):04d}",
                START + timedelta(seconds=fresh.randrange(DAYS * 86400)),
                None,
                0.0,
            )
        )
    rng.shuffle(queries)
    return queries


def run_queries(
    index: RepeatIndex, queries: list[tuple[str, str, datetime, str | None, float]]
) -> dict[str, float]:
    for text, area, at, _, _ in queries[:50]:
        index.query(text, area, at)
    lat = np.empty(len(queries))
    found = found_above = planted_above = fresh_hits = 0
    for i, (text, area, at, source, true_j) in enumerate(queries):
        t0 = time.perf_counter()
        hits = index.query(text, area, at, limit=5)
        lat[i] = (time.perf_counter() - t0) * 1000
        if source is None:
            fresh_hits += bool(hits)
            continue
        ok = any(h.ticket_id == source for h in hits)
        found += ok
        if true_j >= index.threshold:
            planted_above += 1
            found_above += ok
    planted = sum(1 for q in queries if q[3] is not None)
    return {
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "recall_planted": found / planted,
        "recall_planted_jaccard_ge_threshold": found_above / planted_above if planted_above else float("nan"),
        "planted_jaccard_ge_threshold": planted_above,
        "fresh_with_hits": fresh_hits / (len(queries) - planted),
    }


def flood(n: int = 20_000, queries: int = 2_000) -> dict[str, float]:
    """A flood: ``n`` near-identical requests of one area (one street lamp, a number apart), then more of them.

    Every band of every query hits the most recent rows, so this is the query's worst case (the one
    `bench/intake.py` loads the server with); the per-band cap bounds it.
    """
    index = RepeatIndex(window_days=30, threshold=0.6)
    at = START
    template = "路灯不亮 幸福路{}号附近的路灯已经坏了一个星期，晚上行人很不安全，请尽快维修。"
    for i in range(n):
        index.add(f"F{i}", "AREA0000", template.format(i), at)
    lat = np.empty(queries)
    for i in range(queries):
        text = template.format(n + i)
        t0 = time.perf_counter()
        index.query(text, "AREA0000", at)
        lat[i] = (time.perf_counter() - t0) * 1000
    return {"flood_n": n, "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="tickets in the full index")
    parser.add_argument("--quick", action="store_true", help="50,000 tickets, for a smoke run")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    n = 50_000 if args.quick else args.n
    n_base = max(1000, n // 10)
    console = Console()

    # Planted sources come from the first n_base tickets, held by both indexes: one query set for both.
    sources = list(generate(n_base, args.seed))
    queries = make_queries(sources, args.seed)
    planted_j = np.array([q[4] for q in queries if q[3] is not None])
    del sources

    console.print(f"baseline: building {n_base:,} tickets …")
    index, base_build = build(n_base, args.seed)
    base_query = run_queries(index, queries)
    del index
    gc.collect()

    console.print(f"full: building {n:,} tickets …")
    index, full_build = build(n, args.seed)
    full_query = run_queries(index, queries)

    base = {**base_build, **base_query}
    full = {**full_build, **full_query}
    ratio = {k: full[k] / base[k] for k in ("p50_ms", "p95_ms", "p99_ms", "rss_mb", "build_s") if base[k]}

    table = Table(
        title=f"RepeatIndex: {n:,} vs {n_base:,} tickets, {QUERIES:,} queries, {AREAS:,} areas, {DAYS} days"
    )
    table.add_column("metric")
    table.add_column(f"{n_base:,}", justify="right")
    table.add_column(f"{n:,}", justify="right")
    table.add_column("ratio", justify="right")
    rows = [
        ("build_s", "build time (s)", "{:.1f}"),
        ("adds_per_s", "adds / s", "{:,.0f}"),
        ("rss_mb", "RSS growth (MB)", "{:.0f}"),
        ("rss_bytes_per_ticket", "RSS bytes / ticket", "{:.0f}"),
        ("array_mb", "numpy arrays (MB)", "{:.0f}"),
        ("p50_ms", "query p50 (ms)", "{:.3f}"),
        ("p95_ms", "query p95 (ms)", "{:.3f}"),
        ("p99_ms", "query p99 (ms)", "{:.3f}"),
        ("max_ms", "query max (ms)", "{:.3f}"),
        ("recall_planted", "recall, all planted", "{:.3f}"),
        ("recall_planted_jaccard_ge_threshold", "recall, planted J ≥ 0.6", "{:.3f}"),
        ("fresh_with_hits", "fresh queries with a hit", "{:.3f}"),
    ]
    for key, label, fmt in rows:
        r = ratio.get(key)
        table.add_row(label, fmt.format(base[key]), fmt.format(full[key]), f"{r:.2f}×" if r else "")
    console.print(table)
    verdict = "PASS" if full["p95_ms"] <= TARGET_P95_MS else "FAIL"
    console.print(
        f"target p95 ≤ {TARGET_P95_MS} ms at {n:,}: [bold]{verdict}[/bold]; planted true Jaccard "
        f"median {np.median(planted_j):.2f}, {np.mean(planted_j >= 0.6):.0%} of them ≥ 0.6"
    )

    flooded = flood()
    console.print(
        f"flood of {flooded['flood_n']:,} near-identical requests in one area: query p50 "
        f"{flooded['p50_ms']:.3f} ms, p95 {flooded['p95_ms']:.3f} ms"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "bench": "repeats",
                "params": {
                    "n": n,
                    "baseline_n": n_base,
                    "queries": QUERIES,
                    "areas": AREAS,
                    "days": DAYS,
                    "threshold": 0.6,
                    "window_days": 30,
                    "seed": args.seed,
                    "quick": args.quick,
                },
                "baseline": base,
                "full": full,
                "ratio_full_over_baseline": ratio,
                "planted_true_jaccard": {
                    "median": float(np.median(planted_j)),
                    "share_ge_0.6": float(np.mean(planted_j >= 0.6)),
                },
                "flood": flooded,
                "target_p95_ms": TARGET_P95_MS,
                "pass": verdict == "PASS",
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
