"""Cluster warnings: one warning per cluster, within the window and the area, deterministic."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from minsheng.triage.clusters import ClusterDetector, ClusterTicket, ClusterWarning, find_clusters

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
FOOD = [
    "华联超市售卖过期面包，生产日期是上个月",
    "华联超市货架上的牛奶过期了还在卖",
    "在超市买到过期食品，要求处理",
    "超市销售过期饼干，吃了肚子疼",
    "又发现超市在卖过期食品",
    "超市冷柜里的酸奶过期三天",
]
UNRELATED = ["小区路灯坏了", "楼上装修噪音大", "公交站牌被撞倒", "井盖丢失很危险", "树枝压住电线"]


def feed(
    detector: ClusterDetector, rows: Sequence[tuple[str, str | None, str, str, datetime]]
) -> list[ClusterWarning]:
    out: list[ClusterWarning] = []
    for row in rows:
        out.extend(detector.observe(*row))
    return out


def test_warning_raised_exactly_once_then_grows() -> None:
    detector = ClusterDetector(min_count=3, window=timedelta(days=3))
    rows = [(f"t{i}", "FOOD.EXPIRED", "S1", text, T0 + timedelta(hours=5 * i)) for i, text in enumerate(FOOD)]
    warnings = feed(detector, rows)
    new = [w for w in warnings if w.kind == "new"]
    assert len(new) == 1
    assert new[0].member_ticket_ids == ("t0", "t1", "t2")
    assert [w.kind for w in warnings] == ["new"] + ["grown"] * (len(FOOD) - 3)
    assert {w.key for w in warnings} == {new[0].key}
    last = warnings[-1]
    assert last.member_ticket_ids == tuple(f"t{i}" for i in range(len(FOOD)))
    assert last.first_at == T0 and last.last_at == rows[-1][4]
    assert last.category_code == "FOOD.EXPIRED" and last.area_code == "S1"


def test_summary_lists_terms_shared_by_members() -> None:
    detector = ClusterDetector(min_count=3)
    rows = [(f"t{i}", "FOOD.EXPIRED", "S1", text, T0 + timedelta(hours=i)) for i, text in enumerate(FOOD)]
    warning = feed(detector, rows)[-1]
    assert warning.summary
    for term in warning.summary:
        assert sum(term in text for text in FOOD) >= 2


def test_below_min_count_no_warning() -> None:
    detector = ClusterDetector(min_count=4)
    rows = [(f"t{i}", "FOOD.EXPIRED", "S1", FOOD[i], T0 + timedelta(hours=i)) for i in range(3)]
    assert feed(detector, rows) == []


def test_window_is_respected() -> None:
    detector = ClusterDetector(min_count=3, window=timedelta(days=3))
    rows = [(f"t{i}", "FOOD.EXPIRED", "S1", FOOD[i], T0 + timedelta(days=4 * i)) for i in range(len(FOOD))]
    assert feed(detector, rows) == []


def test_members_outside_the_window_do_not_count() -> None:
    detector = ClusterDetector(min_count=3, window=timedelta(days=3))
    times = [T0, T0 + timedelta(days=2), T0 + timedelta(days=4, hours=1)]
    rows = [(f"t{i}", "FOOD.EXPIRED", "S1", FOOD[i], at) for i, at in enumerate(times)]
    assert feed(detector, rows) == []


def test_area_is_respected_and_area_level_groups_codes() -> None:
    rows = [
        (f"t{i}", "FOOD.EXPIRED", f"110105001{i:03d}", FOOD[i], T0 + timedelta(hours=i)) for i in range(3)
    ]
    assert feed(ClusterDetector(min_count=3), rows) == []
    (w,) = feed(ClusterDetector(min_count=3, area_level=9), rows)
    assert w.kind == "new" and w.area_code == "110105001"
    (w,) = feed(ClusterDetector(min_count=3, area_level=lambda code: code[:6]), rows)
    assert w.area_code == "110105"


def test_similar_text_links_without_category() -> None:
    texts = ["幸福路段夜间施工噪音扰民严重", "幸福路段夜间施工噪音扰民", "幸福路段夜间施工噪音很扰民严重"]
    rows = [(f"n{i}", None, "S1", t, T0 + timedelta(hours=i)) for i, t in enumerate(texts)]
    (w,) = feed(ClusterDetector(min_count=3, similarity=0.5), rows)
    assert w.category_code is None


def test_dissimilar_tickets_of_different_categories_do_not_cluster() -> None:
    rows = [(f"u{i}", f"CAT{i}", "S1", t, T0 + timedelta(hours=i)) for i, t in enumerate(UNRELATED)]
    assert feed(ClusterDetector(min_count=3), rows) == []


def test_match_both_needs_category_and_text() -> None:
    rows = [
        (f"t{i}", "FOOD.EXPIRED", "S1", text, T0 + timedelta(hours=i)) for i, text in enumerate(UNRELATED)
    ]
    assert feed(ClusterDetector(min_count=3, match="both"), rows) == []
    assert feed(ClusterDetector(min_count=3, match="category"), rows)


def test_same_ticket_twice_counts_once() -> None:
    detector = ClusterDetector(min_count=3)
    rows = [("t0", "F", "S1", FOOD[0], T0), ("t0", "F", "S1", FOOD[0], T0), ("t1", "F", "S1", FOOD[1], T0)]
    assert feed(detector, rows) == []


def test_two_separate_clusters_two_warnings() -> None:
    rows = [(f"f{i}", "FOOD", "S1", FOOD[i], T0 + timedelta(hours=i)) for i in range(3)]
    rows += [(f"g{i}", "FOOD", "S2", FOOD[i], T0 + timedelta(hours=i)) for i in range(3)]
    rows.sort(key=lambda r: r[4])
    warnings = feed(ClusterDetector(min_count=3), rows)
    assert [w.kind for w in warnings] == ["new", "new"]
    assert len({w.key for w in warnings}) == 2


def _history(seed: int) -> list[ClusterTicket]:
    rng = random.Random(seed)
    out = []
    for i in range(400):
        hot = rng.random() < 0.3
        out.append(
            ClusterTicket(
                ticket_id=f"h{i:04d}",
                category_code="FOOD" if hot else f"C{rng.randrange(50)}",
                area_code=f"S{rng.randrange(3) if hot else rng.randrange(40)}",
                text=rng.choice(FOOD) if hot else rng.choice(UNRELATED) + str(i),
                at=T0 + timedelta(hours=rng.randrange(24 * 20)),
            )
        )
    return out


def test_batch_matches_incremental_and_ignores_input_order() -> None:
    history = _history(5)
    batch = find_clusters(history, min_count=3, window=timedelta(days=3))
    assert batch
    shuffled = history[:]
    random.Random(9).shuffle(shuffled)
    assert find_clusters(shuffled, min_count=3, window=timedelta(days=3)) == batch

    detector = ClusterDetector(min_count=3, window=timedelta(days=3))
    live: list[ClusterWarning] = []
    for t in sorted(history, key=lambda t: (t.at, t.ticket_id)):
        live.extend(detector.observe(t.ticket_id, t.category_code, t.area_code, t.text, t.at))
    new_keys = [w.key for w in live if w.kind == "new"]
    assert len(new_keys) == len(set(new_keys)) == len(batch)
    assert {w.key for w in batch} == set(new_keys)
    for w in batch:
        assert len(w.member_ticket_ids) >= 3
        members = [t for t in history if t.ticket_id in set(w.member_ticket_ids)]
        assert {t.area_code for t in members} == {w.area_code}


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        ClusterDetector(min_count=1)
    with pytest.raises(ValueError):
        ClusterDetector(window=timedelta(0))


def test_key_comes_from_the_earliest_member_even_when_it_arrives_late() -> None:
    # Tickets read late from another process arrive out of time order; every process must name the cluster alike.
    rows = [(f"t{i}", "0201", "S1", text, T0 + timedelta(hours=i)) for i, text in enumerate(FOOD[:3])]
    in_order = feed(ClusterDetector(min_count=3), rows)
    shuffled = feed(ClusterDetector(min_count=3), [rows[2], rows[0], rows[1]])
    assert [w.key for w in in_order] == [w.key for w in shuffled] == ["S1/t0"]


def test_a_late_member_joins_a_warned_cluster_in_time_order() -> None:
    detector = ClusterDetector(min_count=3)
    rows = [(f"t{i}", "0201", "S1", text, T0 + timedelta(hours=2 * i)) for i, text in enumerate(FOOD[:4])]
    feed(detector, rows)
    late = detector.observe("late", "0201", "S1", FOOD[4], T0 + timedelta(hours=3))
    assert [w.kind for w in late] == ["grown"]
    assert late[0].member_ticket_ids == ("t0", "t1", "late", "t2", "t3") and late[0].joined == ("late",)
    after = detector.observe("t4", "0201", "S1", FOOD[5], T0 + timedelta(hours=8))
    assert after[0].member_ticket_ids == ("t0", "t1", "late", "t2", "t3", "t4")


def test_a_flood_is_one_cluster_with_every_member() -> None:
    # Thousands of calls about one burst main: each links to the cluster once, however many members it has.
    detector = ClusterDetector(min_count=3)
    rng = random.Random(4)
    rows = [(f"f{i:04d}", "0301", "S1", rng.choice(FOOD), T0 + timedelta(seconds=i)) for i in range(2000)]
    rows += [
        (f"x{i}", f"C{i}", "S1", UNRELATED[i] + "，请尽快处理", T0 + timedelta(seconds=3000 + i))
        for i in range(5)
    ]
    warnings = feed(detector, rows)
    assert [w.kind for w in warnings] == ["new"] + ["grown"] * 1997
    assert warnings[0].joined == () and [w.joined for w in warnings[1:]] == [(r[0],) for r in rows[3:2000]]
    assert warnings[-1].member_ticket_ids == tuple(r[0] for r in rows[:2000])
