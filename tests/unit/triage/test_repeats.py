"""Repeat detection: planted near-duplicates are found; other areas, old tickets and junk text are not."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from minsheng.triage.repeats import RepeatIndex, normalize_text, shingles

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
BASE = "朝阳区幸福路128号锦绣花园小区东门垃圾堆放五天无人清理，气味很大，蚊蝇很多，请尽快处理"
NEAR = "您好，幸福路128号锦绣花园小区东门的垃圾堆放五天了无人清理，气味很大，蚊蝇很多，请尽快处理！"
OTHER = "建议在实验小学门口增设红绿灯和减速带，上下学时段孩子过马路很危险"


def true_jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(normalize_text(a)).tolist()), set(shingles(normalize_text(b)).tolist())
    return len(sa & sb) / len(sa | sb)


def test_normalisation_folds_width_case_space_and_punctuation() -> None:
    assert normalize_text("ＡＢＣ　１２３，Hello！ 😀") == "abc123hello"
    assert normalize_text("") == ""


def test_planted_near_duplicate_is_found_with_a_fair_score() -> None:
    index = RepeatIndex(window_days=30, threshold=0.5)
    index.add("t1", "K1", BASE, T0)
    index.add("t2", "K1", OTHER, T0)
    hits = index.query(NEAR, "K1", T0 + timedelta(days=2))
    assert [h.ticket_id for h in hits] == ["t1"]
    assert 0.0 <= hits[0].score <= 1.0
    assert hits[0].score == pytest.approx(true_jaccard(BASE, NEAR), abs=0.2)
    assert hits[0].area_code == "K1" and hits[0].at == T0


def test_exact_repeat_scores_one_and_best_first() -> None:
    index = RepeatIndex(threshold=0.5)
    index.add("near", "K1", NEAR, T0)
    index.add("same", "K1", BASE, T0)
    hits = index.query(BASE, "K1", T0)
    assert hits[0].ticket_id == "same" and hits[0].score == 1.0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_other_areas_are_ignored() -> None:
    index = RepeatIndex()
    index.add("t1", "K2", BASE, T0)
    assert index.query(BASE, "K1", T0) == []
    assert index.query(BASE, "K2", T0)


def test_area_key_compares_a_whole_street() -> None:
    index = RepeatIndex(area_key=lambda code: code[:9])
    index.add("t1", "110105001001", BASE, T0)
    hits = index.query(BASE, "110105001002", T0)
    assert [h.ticket_id for h in hits] == ["t1"] and hits[0].area_code == "110105001001"
    assert index.query(BASE, "110105002001", T0) == []


def test_out_of_window_tickets_are_ignored() -> None:
    index = RepeatIndex(window_days=30)
    index.add("old", "K1", BASE, T0)
    assert index.query(BASE, "K1", T0 + timedelta(days=29))
    assert index.query(BASE, "K1", T0 + timedelta(days=31)) == []
    assert index.query(BASE, "K1", T0 - timedelta(days=31)) == []


def test_remove_prune_and_readd() -> None:
    index = RepeatIndex()
    index.add("a", "K1", BASE, T0)
    index.add("b", "K1", BASE, T0 + timedelta(days=10))
    assert index.remove("a") and not index.remove("a")
    assert [h.ticket_id for h in index.query(BASE, "K1", T0 + timedelta(days=10))] == ["b"]
    assert index.prune(T0 + timedelta(days=11)) == 1
    assert len(index) == 0 and index.query(BASE, "K1", T0 + timedelta(days=10)) == []
    index.add("c", "K1", OTHER, T0)
    index.add("c", "K1", BASE, T0)
    assert len(index) == 1
    assert index.query(OTHER, "K1", T0) == []
    assert [h.ticket_id for h in index.query(BASE, "K1", T0)] == ["c"]


@pytest.mark.parametrize("junk", ["", "   ", "😀😀😀🎉", "！！！？？…… ——", "\n\t"])
def test_empty_emoji_and_punctuation_text(junk: str) -> None:
    index = RepeatIndex()
    index.add("junk", "K1", junk, T0)
    index.add("real", "K1", BASE, T0)
    assert index.query(junk, "K1", T0) == []
    assert [h.ticket_id for h in index.query(BASE, "K1", T0)] == ["real"]
    assert index.remove("junk")


def test_single_character_text_still_compares() -> None:
    index = RepeatIndex()
    index.add("one", "K1", "吵", T0)
    assert [h.ticket_id for h in index.query("吵！", "K1", T0)] == ["one"]


def test_hundred_thousand_characters() -> None:
    rng = random.Random(3)
    huge = "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(100_000))
    index = RepeatIndex()
    start = time.perf_counter()
    index.add("huge", "K1", huge, T0)
    hits = index.query(huge[:-50] + "再次反映", "K1", T0)
    assert time.perf_counter() - start < 10
    assert [h.ticket_id for h in hits] == ["huge"]
    assert index.query(BASE, "K1", T0) == []


def test_recall_of_planted_duplicates_among_many_similar_tickets() -> None:
    rng = random.Random(11)
    subjects = [
        "路灯不亮",
        "垃圾没人清理",
        "下水道堵塞",
        "夜间施工噪音",
        "占道经营",
        "电梯故障",
        "停水没有通知",
    ]
    index = RepeatIndex(threshold=0.6, merge_every=500)
    texts: dict[str, tuple[str, str]] = {}
    for i in range(3000):
        area = f"K{rng.randrange(20)}"
        text = (
            f"{rng.choice(['建设', '人民', '解放', '和平'])}路{rng.randint(1, 400)}号"
            f"{rng.choice(['东门', '北侧', '楼下'])}{rng.choice(subjects)}已经{rng.randint(2, 30)}天，"
            f"{rng.choice(['请尽快处理', '影响居民生活', '多次反映未解决'])}"
        )
        texts[f"t{i}"] = (area, text)
        index.add(f"t{i}", area, text, T0 + timedelta(minutes=i))
    found = tried = 0
    for tid in rng.sample(sorted(texts), 200):
        area, text = texts[tid]
        near = "市民反映：" + text + "谢谢"
        if true_jaccard(near, text) < 0.7:
            continue
        tried += 1
        found += any(h.ticket_id == tid for h in index.query(near, area, T0 + timedelta(days=1), limit=10))
    assert tried >= 100
    assert found / tried >= 0.95


def test_compaction_keeps_the_survivors() -> None:
    index = RepeatIndex(merge_every=256)
    for i in range(3000):
        index.add(i, "K1", f"第{i}号楼{BASE}{i * 7919}", T0)
    for i in range(0, 3000, 3):
        index.remove(i)
    for i in range(1, 3000, 3):
        index.remove(i)
    assert len(index) == 1000
    for i in (2, 1499, 2999):
        hits = index.query(f"第{i}号楼{BASE}{i * 7919}", "K1", T0, limit=3)
        assert hits and hits[0].ticket_id == i and hits[0].score == 1.0
    assert all(int(str(h.ticket_id)) % 3 == 2 for h in index.query(BASE, "K1", T0, limit=50))


def test_limit_and_bad_arguments() -> None:
    index = RepeatIndex(threshold=0.3)
    for i in range(10):
        index.add(i, "K1", BASE, T0)
    assert len(index.query(BASE, "K1", T0, limit=3)) == 3
    assert index.query(BASE, "K1", T0, limit=0) == []
    with pytest.raises(ValueError):
        RepeatIndex(threshold=1.5)
    with pytest.raises(ValueError):
        RepeatIndex(window_days=0)


def test_naive_datetimes_are_taken_as_utc() -> None:
    index = RepeatIndex()
    index.add("t", "K1", BASE, T0.replace(tzinfo=None))
    (hit,) = index.query(BASE, "K1", T0)
    assert hit.at == T0


def test_query_since_sees_only_what_was_added_after_a_generation() -> None:
    index = RepeatIndex(window_days=30, threshold=0.5)
    index.add("old", "K1", BASE, T0)
    mark = index.generation
    assert index.query_since(NEAR, "K1", T0, mark) == []
    index.add("other-area", "K2", BASE, T0)
    index.add("junk", "K1", "！！😀", T0)
    index.add("unlike", "K1", OTHER, T0)
    index.add("late", "K1", BASE + "。", T0 + timedelta(hours=1))
    assert index.generation == mark + 4
    assert [h.ticket_id for h in index.query_since(NEAR, "K1", T0, mark)] == ["late"]
    assert {h.ticket_id for h in index.query(NEAR, "K1", T0)} == {"old", "late"}
    assert index.query_since(NEAR, "K1", T0 + timedelta(days=60), mark) == []  # outside the window
    index.add("old", "K1", BASE, T0)  # re-added: counts as new
    assert {h.ticket_id for h in index.query_since(NEAR, "K1", T0, mark)} == {"old", "late"}


def test_query_since_survives_compaction() -> None:
    index = RepeatIndex(window_days=30, threshold=0.5)
    for i in range(3000):
        index.add(f"f{i}", "K9", f"{OTHER}{i}", T0)
    mark = index.generation
    index.add("late", "K1", BASE, T0)
    for i in range(2500):
        index.remove(f"f{i}")  # compacts: rows move
    assert [h.ticket_id for h in index.query_since(NEAR, "K1", T0, mark)] == ["late"]
    assert [h.ticket_id for h in index.query_since(NEAR, "K1", T0, 0)] == ["late"]


def test_empty_like_keeps_window_threshold_and_area_buckets() -> None:
    index = RepeatIndex(window_days=7, threshold=0.9, area_key=lambda code: code[:2])
    index.add("t1", "K1a", BASE, T0)
    twin = index.empty_like()
    assert len(twin) == 0 and twin.generation == 0
    twin.add("t2", "K1b", NEAR, T0)  # same bucket "K1"
    assert twin.query_since(NEAR, "K1c", T0, 0)[0].ticket_id == "t2"
    assert twin.query_since(BASE, "K1c", T0, 0) == []  # below 0.9
    assert twin.query_since(NEAR, "K1c", T0 + timedelta(days=8), 0) == []
