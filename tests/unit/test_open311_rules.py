"""The pure parts of Open311 (issue 16): the scrubbing of personal data from published texts, the date window,
the status mapping, the XML rendering and the check of a submission's attributes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from minsheng.api.open311.render import fmt_of, to_xml
from minsheng.domain.states import TicketState
from minsheng.services.open311 import (
    CLOSED,
    EXTENDED_STATUS,
    MAX_DAYS,
    date_range,
    event_text,
    parse_query,
    scrub,
    status_of,
)
from minsheng.services.open311_catalogue import AttributeDef, Service, checked_attributes
from minsheng.services.open311_keys import Open311Error

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "回电13800138000",
        "回电 138 0013 8000",
        "手机+86 13800138000。",
        "座机0851-86612345",
        "身份证110101199003071234",
        "身份证11010119900307123X号",
        "邮箱 wang.xm+1@mail.example.cn",
    ],
)
def test_phone_id_and_email_are_scrubbed(text: str) -> None:
    out = scrub(text)
    assert out is not None and "***" in out
    for secret in ("13800138000", "0013 8000", "86612345", "1990030712", "wang.xm"):
        assert secret not in out


def test_ordinary_numbers_and_the_citizen_name() -> None:
    # House numbers, dates and amounts stay; the citizen's name is masked wherever it appears.
    assert scrub("幸福路3号2单元501室，12月3日起，损失200元") == "幸福路3号2单元501室，12月3日起，损失200元"
    assert scrub("王小明来电，王小明说路灯坏了", "王小明") == "王**来电，王**说路灯坏了"
    assert scrub(None) is None


def test_the_date_window() -> None:
    s, e = date_range(None, None, NOW)
    assert e == NOW and e - s == timedelta(days=MAX_DAYS)
    s, e = date_range("2026-11-01T00:00:00+08:00", None, NOW)
    assert e - s == timedelta(days=MAX_DAYS)
    s, e = date_range("2026-11-01", "2026-11-02", NOW)  # no zone: the city's time
    assert s == datetime(2026, 10, 31, 16, 0, tzinfo=UTC) and e - s == timedelta(days=1)
    for start, end in (("2026-01-01", "2026-06-01"), ("2026-02-01", "2026-01-01"), ("tomorrow", None)):
        with pytest.raises(Open311Error) as err:
            date_range(start, end, NOW)
        assert err.value.status == 400


def test_a_list_of_ids_overrides_the_other_filters() -> None:
    q = parse_query({"service_request_id": "2026120400001, 2026120400002", "status": "bogus"}, NOW)
    assert q.ids == ["2026120400001", "2026120400002"] and q.statuses is None
    with pytest.raises(Open311Error):
        parse_query({"status": "bogus"}, NOW)
    with pytest.raises(Open311Error):
        parse_query({"page": "0"}, NOW)


def test_states_map_to_open_and_closed() -> None:
    assert {s for s in TicketState if status_of(s.value) == "closed"} == set(CLOSED)
    assert status_of("close_requested") == "open" and status_of("rated") == "closed"
    assert set(EXTENDED_STATUS) == set(TicketState)
    assert EXTENDED_STATUS[TicketState.MERGED] == "duplicate"


def test_notes_show_what_the_citizen_may_read() -> None:
    assert (
        event_text("dispatch", {"lead_unit_name": "市城管局", "explanation": {"x": 1}}, None)
        == "派单：市城管局"
    )
    # A unit's feedback text is not on the public timeline's list; a closing summary is, scrubbed.
    assert (
        event_text("feedback", {"text": "已联系13800138000", "unit_name": "市城管局"}, None)
        == "反馈：市城管局"
    )
    assert (
        event_text("request_close", {"summary": "已修复，联系人13800138000"}, None)
        == "申请结案：已修复，联系人***"
    )
    assert event_text("citizen_update", {"text": "还没修好"}, None) == "群众补充：还没修好"


def test_xml_items_are_named_after_their_lists() -> None:
    doc = ET.fromstring(
        to_xml(
            "service_definition",
            {"service_code": "1", "attributes": [{"code": "A", "values": [{"key": "k"}]}]},
        )
    )
    assert doc.find("attributes/attribute/values/value/key").text == "k"  # type: ignore[union-attr]
    doc = ET.fromstring(to_xml("services", [{"metadata": True, "keywords": None}]))
    assert doc.find("service/metadata").text == "true" and doc.find("service/keywords").text is None  # type: ignore[union-attr]
    assert fmt_of("/open311/v2/requests/1.XML") == "xml" and fmt_of("/open311/v2/requests.yaml") == "json"


def test_attributes_are_checked_against_the_definition() -> None:
    svc = Service(
        code="0201",
        name="噪声污染",
        group="环境保护",
        description="",
        keywords="",
        attributes=[
            AttributeDef(
                code="SRC",
                datatype="singlevaluelist",
                required=True,
                description="来源",
                values=[{"key": "s", "name": "商铺"}],
            ),  # type: ignore[list-item]
            AttributeDef(code="N", datatype="number", description="分贝"),
            AttributeDef(
                code="M",
                datatype="multivaluelist",
                description="时段",
                values=[{"key": "d", "name": "白天"}, {"key": "n", "name": "夜间"}],
            ),  # type: ignore[list-item]
        ],
    )
    got = checked_attributes(svc, {"SRC": ["s"], "N": ["75"], "M": ["d", "n"], "report_url": ["https://x"]})
    assert got == [("来源", "商铺"), ("分贝", "75"), ("时段", "白天、夜间"), ("report_url", "https://x")]
    for bad in (
        {},
        {"SRC": ["x"]},
        {"SRC": ["s"], "N": ["loud"]},
        {"SRC": ["s"], "N": ["nan"]},
        {"SRC": ["s", "s"]},
    ):
        with pytest.raises(Open311Error) as err:
            checked_attributes(svc, bad)
        assert err.value.status == 400
