"""The mapping file of a ticket history import: which columns of a city's export make which ticket fields.

A mapping is a TOML file (format and examples in docs/INTEGRATIONS.md, "History import"; ready-made ones in
``minsheng/services/history/mappings/``). Every field is a *template*: text with ``{Column Name}`` place
holders, or a list of templates of which the first that is not empty wins. Column names are matched loosely
(case, spaces, ``_`` and ``-`` do not matter), so one mapping reads both "Created Date" and "created_date".
Fields with a closed set of values (channel, state, rating, kind) take a ``map`` from the file's values to
ours (matched case-insensitively) and a ``default``.

Parsing a mapping is pure: it reads no database and no data file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from minsheng.domain.states import Channel, Kind, Rating, UnitKind, Urgency

BUILTIN_DIR = Path(__file__).parent / "mappings"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
#: The states a source row may map to; "rated" follows from a rating, never from the state column.
IMPORT_STATES = ("accepted", "dispatched", "in_progress", "closed")
#: Stripped from the ends of a rendered template, so "{A}: {B}" with B empty reads "A".
_TRIM = " \t\r\n:;,-/|·，；：、"


class MappingError(ValueError):
    """The mapping file is unreadable or inconsistent."""


def column_key(name: str) -> str:
    """How column names are compared: case-folded, spaces, '_' and '-' removed."""
    return re.sub(r"[\s_\-]+", "", str(name)).casefold()


@dataclass(frozen=True)
class Template:
    """One or more alternatives of text with ``{Column}`` place holders; the first non-empty one wins."""

    alternatives: tuple[str, ...] = ()
    _compiled: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple(_compile(a) for a in self.alternatives))

    @classmethod
    def of(cls, value: Any, where: str) -> Template:
        if value is None:
            return cls(())
        if isinstance(value, str):
            return cls((value,))
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return cls(tuple(value))
        raise MappingError(f"{where}: expected a template string or a list of them")

    def __bool__(self) -> bool:
        return bool(self.alternatives)

    def columns(self) -> set[str]:
        return {column_key(m) for alt in self.alternatives for m in _PLACEHOLDER.findall(alt)}

    def render(self, row: MappingABC[str, str]) -> str:
        for compiled in self._compiled:
            text = _render(compiled, row).strip(_TRIM)
            if text:
                return text
        return ""

    def available(self, header: set[str]) -> bool:
        """Whether some alternative can be filled from these (normalised) column names."""
        return any(
            all(column_key(m) in header for m in _PLACEHOLDER.findall(alt)) for alt in self.alternatives
        )


def _compile(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(literals, column keys) of a template: literal, key, literal, …, literal."""
    parts = _PLACEHOLDER.split(template)
    return tuple(parts[0::2]), tuple(column_key(n) for n in parts[1::2])


def _render(compiled: tuple[tuple[str, ...], tuple[str, ...]], row: MappingABC[str, str]) -> str:
    """Fill the place holders. Empty ones drop out with the separator before them, so "{A}, {B}, {C}" with B
    empty reads "a, c"; a template whose place holders are all empty renders as nothing."""
    literals, keys = compiled
    if not keys:
        return literals[0]
    if len(keys) == 1 and not literals[0] and not literals[1]:
        return row.get(keys[0], "")  # the common case: one column as it is
    values = [row.get(k, "") for k in keys]
    if not any(values):
        return ""
    out = [literals[0]]
    first = True
    for i, value in enumerate(values):
        if not value:
            continue
        if not first:
            out.append(literals[i])  # the text between the previous place holder and this one
        out.append(value)
        first = False
    out.append(literals[-1])
    return "".join(out)


@dataclass(frozen=True)
class Choice:
    """A template whose rendered value is translated by ``map`` (case-insensitive), else ``default``."""

    template: Template
    values: dict[str, str]
    default: str | None
    allowed: tuple[str, ...]

    def pick(self, row: MappingABC[str, str]) -> tuple[str | None, str]:
        """(our value or None, the source's raw text)."""
        raw = self.template.render(row)
        if raw:
            mapped = self.values.get(raw.casefold())
            if mapped is None and raw in self.allowed:
                mapped = raw  # the file already speaks our vocabulary
            return mapped, raw
        return self.default, raw


@dataclass(frozen=True)
class UnitRule:
    code: Template
    name: Template
    create: bool = False
    kind: str = UnitKind.DEPARTMENT.value
    parent: str | None = None
    fallback: str | None = None
    fallback_name: str | None = None


@dataclass(frozen=True)
class CategoryRule:
    code: Template  # an existing category code
    path: tuple[Template, ...]  # names from the top, created under ``root`` when ``create``
    create: bool = False
    root_code: str | None = None
    root_name: str | None = None
    fallback: str | None = None


@dataclass(frozen=True)
class HistoryMapping:
    name: str
    source: str
    source_id: Template
    zone: ZoneInfo
    time_formats: tuple[str, ...]
    title: Template
    detail: Template
    address: Template
    citizen_name: Template
    citizen_phone: Template
    lat: Template
    lon: Template
    reply: Template
    times: dict[str, Template]
    channel: Choice
    kind: Choice
    urgency: Choice
    state: Choice
    rating: Choice
    unit: UnitRule | None
    category: CategoryRule | None
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def parse_time(self, text: str) -> datetime | None:
        """A time of the file (ISO 8601 or one of ``time_formats``), local to ``zone`` unless it says; as UTC."""
        return parse_time(text, self.zone, self.time_formats)


TIME_FIELDS = ("created", "dispatched", "signed", "replied", "closed", "rated")


def parse_time(text: str, zone: ZoneInfo, formats: tuple[str, ...]) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    value: datetime | None = None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        for fmt in formats:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if value is None:
        raise ValueError(f"'{text}' is not a time this mapping reads")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def day_start(d: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=zone).astimezone(UTC)


# ------------------------------------------------------------------------------------------------ loading
def builtin_mappings() -> dict[str, Path]:
    """The ready-made mappings shipped with minsheng, by name (file name without .toml)."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.toml"))}


def load_mapping(spec: str | Path) -> HistoryMapping:
    """A mapping from a TOML file, or a built-in one by name ("nyc311", "message_board")."""
    path = Path(spec)
    if not path.is_file():
        builtin = builtin_mappings().get(str(spec))
        if builtin is None:
            names = ", ".join(builtin_mappings())
            raise MappingError(f"mapping not found: {spec} (a TOML file, or one of: {names})")
        path = builtin
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise MappingError(f"{path.name}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise MappingError(f"{path.name}: not valid TOML: {e}") from None
    return parse_mapping(data, name=path.stem, path=path)


def _table(data: MappingABC[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise MappingError(f"[{key}] must be a table")
    return value


def _choice(data: Any, where: str, allowed: tuple[str, ...], default: str | None) -> Choice:
    if data is None:
        return Choice(Template(()), {}, default, allowed)
    if isinstance(data, str | list):
        data = {"value": data}
    if not isinstance(data, dict):
        raise MappingError(f"{where}: expected a table with value, map and default")
    values = data.get("map", {})
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise MappingError(f"{where}.map: expected a table of strings")
    wrong = sorted({v for v in values.values() if v not in allowed and v != "error"})
    dflt = data.get("default", default)
    if dflt is not None and dflt not in allowed:
        wrong.append(dflt)
    if wrong:
        raise MappingError(f"{where}: unknown value(s) {', '.join(wrong)}; allowed: {', '.join(allowed)}")
    return Choice(
        Template.of(data.get("value"), f"{where}.value"),
        {str(k).casefold(): v for k, v in values.items()},
        dflt,
        allowed,
    )


def parse_mapping(
    data: MappingABC[str, Any], *, name: str = "mapping", path: Path | None = None
) -> HistoryMapping:
    src = _table(data, "source")
    source = src.get("name")
    if not isinstance(source, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", source):
        raise MappingError("[source] name must be 1-64 letters, digits, '_', '.' or '-'")
    source_id = Template.of(src.get("id"), "source.id")
    if not source_id:
        raise MappingError("[source] id is required: the column that identifies a row in the source")
    try:
        zone = ZoneInfo(str(src.get("timezone", "Asia/Shanghai")))
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(f"[source] timezone '{src.get('timezone')}' is unknown") from None
    formats = src.get("time_formats", [])
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        raise MappingError("[source] time_formats must be a list of strptime formats")
    tk = _table(data, "ticket")
    times_t = _table(data, "times")
    unknown = sorted(set(times_t) - set(TIME_FIELDS))
    if unknown:
        raise MappingError(f"[times] unknown field(s): {', '.join(unknown)}; known: {', '.join(TIME_FIELDS)}")
    times = {k: Template.of(times_t.get(k), f"times.{k}") for k in TIME_FIELDS}
    if not times["created"]:
        raise MappingError("[times] created is required")
    detail = Template.of(tk.get("detail"), "ticket.detail")
    if not detail:
        raise MappingError("[ticket] detail is required")
    return HistoryMapping(
        name=name,
        source=source,
        source_id=source_id,
        zone=zone,
        time_formats=tuple(formats),
        title=Template.of(tk.get("title"), "ticket.title"),
        detail=detail,
        address=Template.of(tk.get("address"), "ticket.address"),
        citizen_name=Template.of(tk.get("citizen_name"), "ticket.citizen_name"),
        citizen_phone=Template.of(tk.get("citizen_phone"), "ticket.citizen_phone"),
        lat=Template.of(tk.get("lat"), "ticket.lat"),
        lon=Template.of(tk.get("lon"), "ticket.lon"),
        reply=Template.of(_table(data, "reply").get("text"), "reply.text"),
        times=times,
        channel=_choice(tk.get("channel"), "ticket.channel", tuple(Channel.values()), Channel.PHONE.value),
        kind=_choice(tk.get("kind"), "ticket.kind", tuple(Kind.values()), Kind.COMPLAINT.value),
        urgency=_choice(tk.get("urgency"), "ticket.urgency", tuple(Urgency.values()), Urgency.NORMAL.value),
        state=_choice(data.get("state"), "state", IMPORT_STATES, None),
        rating=_choice(data.get("rating"), "rating", tuple(Rating.values()), None),
        unit=_unit_rule(data.get("unit")),
        category=_category_rule(data.get("category")),
        path=path,
    )


def _unit_rule(data: Any) -> UnitRule | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise MappingError("[unit] must be a table")
    kind = str(data.get("kind", UnitKind.DEPARTMENT.value))
    if kind not in UnitKind.values():
        raise MappingError(f"[unit] kind '{kind}' is not one of {', '.join(UnitKind.values())}")
    rule = UnitRule(
        code=Template.of(data.get("code"), "unit.code"),
        name=Template.of(data.get("name"), "unit.name"),
        create=bool(data.get("create", False)),
        kind=kind,
        parent=data.get("parent"),
        fallback=data.get("fallback"),
        fallback_name=data.get("fallback_name"),
    )
    if not rule.code and not rule.fallback:
        raise MappingError("[unit] needs a code template or a fallback unit code")
    return rule


def _category_rule(data: Any) -> CategoryRule | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise MappingError("[category] must be a table")
    path_t = data.get("path", [])
    if not isinstance(path_t, list) or len(path_t) > 3:
        raise MappingError("[category] path must be a list of at most three templates (names from the top)")
    root = data.get("root", {})
    if not isinstance(root, dict):
        raise MappingError("[category] root must be a table with code and name")
    rule = CategoryRule(
        code=Template.of(data.get("code"), "category.code"),
        path=tuple(Template.of(p, f"category.path[{i}]") for i, p in enumerate(path_t)),
        create=bool(data.get("create", False)),
        root_code=root.get("code"),
        root_name=root.get("name"),
        fallback=data.get("fallback"),
    )
    if rule.path and rule.root_code and len(rule.path) > 2:
        raise MappingError("[category] with a root, the path may name at most two levels (three in all)")
    if rule.path and rule.create and (rule.root_code is None) != (rule.root_name is None):
        raise MappingError("[category] root needs both code and name")
    return rule
