"""Chinese message templates, one per event kind, editable by admins and checked before use.

Templates are Jinja2 text rendered in a sandbox with ``StrictUndefined``: an admin-edited template can
only use the placeholders listed for its kind (`validate_template` refuses others and names them), and
a missing value is an error instead of an empty hole in an SMS to a citizen.

Filters available to templates: ``local`` (a datetime shown in Asia/Shanghai, ``%Y-%m-%d %H:%M``) and
``duration`` (a timedelta as ``X天Y小时Z分钟``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, meta
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment

DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")


class TemplateError(ValueError):
    """A template that cannot be used, or a render that failed; the message says which kind and why."""


def _local(value: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(DISPLAY_ZONE).strftime(fmt)


def _duration(value: timedelta) -> str:
    minutes = max(0, int(value.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{days}天" if days else "",
        f"{hours}小时" if hours else "",
        f"{minutes}分钟" if minutes else "",
    ]
    return "".join(parts) or "0分钟"


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters["local"] = _local
    env.filters["duration"] = _duration
    return env


_ENV = _environment()


@dataclass(frozen=True)
class TemplateSpec:
    kind: str
    title: str
    body: str
    placeholders: frozenset[str]
    description: str = ""


def _spec(kind: str, title: str, body: str, placeholders: Iterable[str], description: str) -> TemplateSpec:
    return TemplateSpec(kind, title, body, frozenset(placeholders), description)


_TICKET = ("hotline_name", "ticket_number")
# Placeholders a caller may leave out; they render as empty text.
_OPTIONAL = frozenset({"rating_url", "level_name"})
_STEP = ("ticket_number", "unit_name", "step_label", "due_at", "category_name", "summary")

TEMPLATES: dict[str, TemplateSpec] = {
    spec.kind: spec
    for spec in (
        _spec(
            "ticket_accepted_sms",
            "诉求已受理",
            "【{{ hotline_name }}】您反映的诉求已受理，工单编号{{ ticket_number }}，查询码{{ query_code }}。"
            "可凭编号和查询码查询办理进度。",
            (*_TICKET, "query_code"),
            "citizen, on intake",
        ),
        _spec(
            "ticket_closed_sms",
            "诉求已办结",
            "【{{ hotline_name }}】您反映的诉求（工单编号{{ ticket_number }}）已办结。"
            "请回复数字评价办理结果：1满意 2基本满意 3基本不满意 4不满意"
            "{% if rating_url %}，或访问 {{ rating_url }} 评价{% endif %}。感谢您的支持！",
            (*_TICKET, "rating_url"),
            "citizen, on closing, asks for the rating",
        ),
        _spec(
            "warning",
            "工单即将超时",
            "【预警】工单{{ ticket_number }}（{{ category_name }}）的{{ step_label }}时限将于"
            "{{ due_at | local }}到期，剩余{{ remaining | duration }}，请{{ unit_name }}抓紧办理。\n"
            "诉求摘要：{{ summary }}",
            (*_STEP, "remaining"),
            "handling unit, before a deadline",
        ),
        _spec(
            "overdue",
            "工单已超时",
            "【超时】工单{{ ticket_number }}（{{ category_name }}）的{{ step_label }}时限已于"
            "{{ due_at | local }}到期，已超时{{ overdue_by | duration }}，请{{ unit_name }}立即办理。\n"
            "诉求摘要：{{ summary }}",
            (*_STEP, "overdue_by"),
            "handling unit, at the deadline",
        ),
        _spec(
            "escalation",
            "工单督办",
            "【督办】{{ target_label }}：{{ unit_name }}承办的工单{{ ticket_number }}（{{ category_name }}）"
            "{{ step_label }}已超时{{ overdue_by | duration }}（时限{{ due_at | local }}）。"
            "{% if level_name %}{{ level_name }}。{% endif %}\n诉求摘要：{{ summary }}",
            (*_STEP, "overdue_by", "target_label", "level_name"),
            "the ladder's target (press: the unit; notify: a leader)",
        ),
        _spec(
            "assignment_new",
            "新派工单",
            "【新工单】{{ unit_name }}：收到工单{{ ticket_number }}"
            "（{{ category_name }}，{{ urgency_label }}），"
            "请于{{ sign_due_at | local }}前签收。\n诉求摘要：{{ summary }}",
            ("ticket_number", "unit_name", "category_name", "urgency_label", "sign_due_at", "summary"),
            "handling unit, on dispatch",
        ),
        _spec(
            "cluster_warning",
            "一类事预警",
            "【一类事预警】{{ area_name }}在{{ period }}内出现{{ count }}件同类诉求（{{ category_name }}），"
            "首件工单{{ first_ticket_number }}，请关注并研判。",
            ("area_name", "period", "count", "category_name", "first_ticket_number"),
            "supervisors, when similar tickets cluster",
        ),
    )
}


@dataclass(frozen=True)
class RenderedMessage:
    kind: str
    title: str
    text: str


def placeholders_of(text: str) -> set[str]:
    """Names a template reads from its context; raises `TemplateError` on a syntax error."""
    try:
        return set(meta.find_undeclared_variables(_ENV.parse(text)))
    except JinjaTemplateError as err:
        raise TemplateError(f"template does not parse: {err}") from err


def validate_template(text: str, allowed_placeholders: Iterable[str], kind: str = "") -> None:
    """Refuse a template that uses a placeholder outside ``allowed_placeholders``, listing every such name."""
    allowed = set(allowed_placeholders)
    unknown = placeholders_of(text) - allowed
    if unknown:
        where = f"template {kind!r}" if kind else "template"
        raise TemplateError(
            f"{where} uses unknown placeholder(s): {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed)) or '(none)'}"
        )


def validate_overrides(overrides: Mapping[str, str]) -> None:
    """Check admin-edited bodies before saving them (unknown kinds and placeholders are refused)."""
    for kind, text in overrides.items():
        spec = TEMPLATES.get(kind)
        if spec is None:
            raise TemplateError(f"no template kind {kind!r} (known: {', '.join(sorted(TEMPLATES))})")
        validate_template(text, spec.placeholders, kind)


def render(
    kind: str, context: Mapping[str, Any], overrides: Mapping[str, str] | None = None
) -> RenderedMessage:
    """Render the template of ``kind`` (or its admin override) with ``context``.

    Raises `TemplateError` for an unknown kind, a bad override, or a placeholder missing from ``context``.
    """
    spec = TEMPLATES.get(kind)
    if spec is None:
        raise TemplateError(f"no template kind {kind!r} (known: {', '.join(sorted(TEMPLATES))})")
    body = (overrides or {}).get(kind, spec.body)
    validate_template(body, spec.placeholders, kind)
    # StrictUndefined must stay strict about real omissions, so optional ones are filled in explicitly.
    values: dict[str, Any] = {
        name: "" for name in spec.placeholders if name not in context and name in _OPTIONAL
    }
    values.update(context)
    try:
        title = _ENV.from_string(spec.title).render(values)
        text = _ENV.from_string(body).render(values)
    except JinjaTemplateError as err:
        raise TemplateError(f"template {kind!r} could not be rendered: {err}") from err
    return RenderedMessage(kind, title.strip(), text.strip())
