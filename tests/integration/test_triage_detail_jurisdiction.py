"""Intake on SQLite and PostgreSQL when the caller says where only in the request's words: the area comes from
the title and detail, refines a coarse address, and never overrules a confident one."""

from __future__ import annotations

from typing import Any

from tests.integration.triage import conftest as triage
from tests.integration.triage.conftest import FakeClassifier, MakeDesk

# The triage city, its database and the desk that takes requests through a real engine: the fixtures of
# tests/integration/triage, reused here.
city_db = triage.city_db
make_desk = triage.make_desk
triage_mode = triage.triage_mode


def reasons(ticket: Any) -> list[str]:
    return [r["code"] for r in (ticket.triage or {}).get("reasons", [])]


def test_place_in_the_detail_decides_the_area_and_the_route(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("010101", 0.97))
    t = desk.intake(title="路面坏了", detail="幸福路街道锦绣花园小区3号楼门口人行道地砖松动，好几天没人管")
    area = t.triage["area"]
    assert area["code"] == "K111" and area["source"] == "jurisdiction", area
    assert area["method"] == "detail_text"
    assert 0.5 <= area["confidence"] < 0.95
    assert "诉求内容" in area["explanation"]
    assert t.state == "dispatched", t.triage["reasons"]
    assert t.triage["route"]["lead_unit"] == "st_s11"


def test_generic_words_leave_the_area_unknown(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("010101", 0.97))
    t = desk.intake(title="路面坏了", detail="小区门口的路面坏了，路灯也不亮，找了街道和社区都不管")
    assert t.triage["area"]["code"] is None and t.triage["area"]["method"] is None
    assert t.state == "accepted" and "area_unknown" in reasons(t)


def test_detail_refines_a_coarse_address(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("010101", 0.97))
    t = desk.intake(title="路面坏了", detail="锦绣花园小区门口人行道地砖松动", address="东湖区")
    area = t.triage["area"]
    assert area["code"] == "K111" and area["method"] == "detail_text", area
    assert "细化了地址所在的 东湖区" in area["explanation"]
    assert t.triage["route"]["lead_unit"] == "st_s11"


def test_detail_never_overrules_the_address(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("010101", 0.97))
    t = desk.intake(
        title="路面坏了", detail="我住锦绣花园小区，这边人行道地砖松动", address="西山区和平街道秋实社区"
    )
    area = t.triage["area"]
    assert area["code"] == "K211" and area["method"] == "text", area
    assert "不一致" in area["explanation"] and "以地址为准" in area["explanation"]
    assert t.triage["route"]["lead_unit"] == "cgj"


def test_detail_settles_an_ambiguous_street(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("010101", 0.97))
    t = desk.intake(title="路面坏了", detail="西山区这边人行道地砖松动", address="和平街道")
    area = t.triage["area"]
    assert area["code"] == "S21" and area["source"] == "jurisdiction", area
    assert not area["ambiguous"]
    assert "area_ambiguous" not in reasons(t) and "area_unknown" not in reasons(t)
