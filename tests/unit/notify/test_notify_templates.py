"""Message templates: defaults render in Chinese, unknown placeholders are refused by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from minsheng.notify.templates import (
    TEMPLATES,
    TemplateError,
    placeholders_of,
    render,
    validate_overrides,
    validate_template,
)

TICKET = {"hotline_name": "12345", "ticket_number": "2025061000001"}
STEP = {
    "ticket_number": "2025061000001",
    "unit_name": "城关街道办",
    "step_label": "签收",
    "due_at": datetime(2025, 6, 10, 2, 15, tzinfo=UTC),
    "category_name": "道路破损",
    "summary": "人民路井盖缺失",
}


def test_intake_sms_has_number_and_query_code() -> None:
    msg = render("ticket_accepted_sms", {**TICKET, "query_code": "8K3F"})
    assert msg.title == "诉求已受理"
    assert "工单编号2025061000001" in msg.text and "查询码8K3F" in msg.text
    assert msg.text.startswith("【12345】")


def test_closing_sms_asks_for_a_rating_with_an_optional_link() -> None:
    text = render("ticket_closed_sms", TICKET).text
    assert "1满意 2基本满意 3基本不满意 4不满意" in text and "访问" not in text
    assert (
        "https://r.example/1"
        in render("ticket_closed_sms", {**TICKET, "rating_url": "https://r.example/1"}).text
    )


def test_step_templates_show_local_time_and_durations() -> None:
    warning = render("warning", {**STEP, "remaining": timedelta(minutes=3)}).text
    assert "2025-06-10 10:15" in warning and "剩余3分钟" in warning
    overdue = render("overdue", {**STEP, "overdue_by": timedelta(days=1, hours=2, minutes=5)}).text
    assert "已超时1天2小时5分钟" in overdue
    esc = render("escalation", {**STEP, "overdue_by": timedelta(hours=1), "target_label": "县领导"}).text
    assert esc.startswith("【督办】县领导：城关街道办")
    new = render(
        "assignment_new",
        {**STEP, "urgency_label": "紧急", "sign_due_at": datetime(2025, 6, 10, 2, 15, tzinfo=UTC)},
    ).text
    assert "请于2025-06-10 10:15前签收" in new
    cluster = render(
        "cluster_warning",
        {
            "area_name": "南湖区",
            "period": "7天",
            "count": 3,
            "category_name": "食品过期",
            "first_ticket_number": "1",
        },
    ).text
    assert "3件同类诉求" in cluster


def test_every_default_template_uses_only_its_placeholders() -> None:
    for kind, spec in TEMPLATES.items():
        validate_template(spec.body, spec.placeholders, kind)
        assert placeholders_of(spec.title) <= spec.placeholders


def test_unknown_placeholders_are_refused_and_listed() -> None:
    with pytest.raises(TemplateError) as err:
        validate_template("{{ ticket_number }} {{ id_number }} {{ phone }}", {"ticket_number"}, "warning")
    assert "template 'warning' uses unknown placeholder(s): id_number, phone" in str(err.value)
    with pytest.raises(TemplateError, match="unknown placeholder"):
        render(
            "ticket_accepted_sms",
            {**TICKET, "query_code": "x"},
            {"ticket_accepted_sms": "{{ citizen_phone }}"},
        )
    with pytest.raises(TemplateError, match="no template kind 'fax'"):
        validate_overrides({"fax": "x"})
    with pytest.raises(TemplateError, match="does not parse"):
        validate_template("{{ ticket_number ", {"ticket_number"})


def test_overrides_are_used_and_missing_values_are_errors() -> None:
    msg = render(
        "ticket_accepted_sms",
        {**TICKET, "query_code": "Q1"},
        {"ticket_accepted_sms": "编号{{ ticket_number }}"},
    )
    assert msg.text == "编号2025061000001"
    with pytest.raises(TemplateError, match="could not be rendered"):
        render("ticket_accepted_sms", TICKET)  # query_code missing
    with pytest.raises(TemplateError, match="no template kind"):
        render("nope", {})


def test_the_sandbox_blocks_unsafe_attribute_access() -> None:
    with pytest.raises(TemplateError):
        render(
            "ticket_accepted_sms",
            {**TICKET, "query_code": "x"},
            {"ticket_accepted_sms": "{{ ticket_number.__class__.__mro__[1].__subclasses__() }}"},
        )
