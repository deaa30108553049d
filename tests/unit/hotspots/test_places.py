"""Places, administrative names and crowds read from typical request sentences."""

from __future__ import annotations

import pytest

from minsheng.hotspots.places import Found, find_places
from minsheng.hotspots.times import parse_time
from minsheng.hotspots.words import tag_words
from minsheng.triage.textnorm import normalize


def _find(text: str, known: dict[str, str] | None = None) -> Found:
    return find_places(tag_words(normalize(text, lower=False), known), known)


@pytest.mark.parametrize(
    ("text", "place", "kind"),
    [
        ("东城区幸福里小区居民反映夜间噪音", "东城区幸福里小区", "estate"),
        ("A5区魅力之城小区临街门面油烟扰民", "A5区魅力之城小区", "estate"),
        ("反映A市阳光100小区没有公办幼儿园的问题", "A市阳光100小区", "estate"),
        ("投诉K2区学府名邸开发商擅自关停电梯", "K2区学府名邸", "estate"),
        ("K58路公交线路停运，上班很不方便", "K58路", "line"),
        ("鑫源建筑劳务公司拖欠农民工工资", "鑫源建筑劳务公司", "org"),
        ("希望尽快取缔A市金帆路这个大型停车场", "A市金帆路", "road"),
        ("A市经济学院体育学院学生被要求去工厂实习", "A市经济学院体育学院", "org"),
        ("A7县泉星社区海阔天空KTV噪音扰民", "A7县泉星社区", "community"),
        ("明月小区门口的烧烤摊油烟太大", "明月小区", "estate"),
    ],
)
def test_the_place_a_request_names(text: str, place: str, kind: str) -> None:
    first = _find(text).places[0]
    assert (first.surface, first.kind) == (place, kind)


@pytest.mark.parametrize(
    "text",
    [
        "希望L5县师资不要过度集中于几所热门学校",
        "咨询公办幼儿园的报名时间",
        "附近小区的路灯不亮",
        "县政府门口的路灯坏了",
        "我们小区电梯坏了",
    ],
)
def test_kinds_of_places_name_no_place(text: str) -> None:
    assert _find(text).places == []


@pytest.mark.parametrize(
    ("text", "crowd"),
    [
        ("某职业学院学生被强制安排到电子厂实习", "某职业学院学生"),
        ("幸福里小区的业主们要求更换物业", "幸福里小区业主"),
        ("A5区佳园星城小区居民反对附近修建垃圾中转站", "佳园星城小区居民"),
        ("鑫源劳务公司拖欠农民工工资", "农民工"),
    ],
)
def test_the_crowd_a_request_speaks_for(text: str, crowd: str) -> None:
    assert _find(text).crowds[0].text == crowd


def test_one_place_written_two_ways_shares_a_key() -> None:
    estate = _find("A5区佳园星城小区居民反对附近修建垃圾中转站")
    station = _find("反映A5区井莲路369号佳园星城垃圾站问题")
    assert estate.keys & station.keys == {"佳园星城"}
    assert not _find("人民路路灯坏了").keys & _find("人民医院挂号难").keys


def test_administrative_names_say_where_not_what() -> None:
    found = _find("位于A市A2区桂花坪街道的A2区公安分局宿舍区出现乱象")
    assert found.admins[:3] == ["A市", "A2区", "桂花坪街道"]
    assert [m.surface for m in found.places] == ["A2区公安分局宿舍区"]
    assert _find("请求合理设置L市城区的28路公交车终点站").admins == ["L市"]


def test_known_names_are_read_whole() -> None:
    known = {"马鞍新村": "place", "鼓楼区": "district", "象山街道": "street"}
    found = _find("鼓楼区象山街道马鞍新村门口垃圾没人清运", known)
    assert found.admins == ["鼓楼区", "象山街道"]
    assert [(m.surface, m.keys) for m in found.places] == [
        ("鼓楼区象山街道马鞍新村", frozenset({"马鞍新村"}))
    ]


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2019/4/25 9:32:09", "2019-04-25T09:32:09"),
        ("2019-04-08 08:37:20", "2019-04-08T08:37:20"),
        ("2019/12/3", "2019-12-03T00:00:00"),
        ("2019年4月5日 9时3分", "2019-04-05T09:03:00"),
        ("2026-11-21T01:00:00+08:00", "2026-11-21T01:00:00+08:00"),
    ],
)
def test_times_as_exports_write_them(text: str, iso: str) -> None:
    assert parse_time(text).isoformat() == iso


@pytest.mark.parametrize("text", ["", "yesterday", "2019/13/40 10:00:00", "25/4/2019"])
def test_unreadable_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)
