"""The Open311 service catalogue (issue 16): which categories are GeoReport services, their definitions
(attributes) as an administrator sets them, and the check of a submission's `attribute[...]` fields.

Services are the leaves of the category tree: the active categories with no active child (a request names
what is wrong, 路灯损坏, not a whole field, 城乡建设). `service_code` is the category's code, `service_name`
its name, `group` the names of its ancestors ("城乡建设 / 市政设施"). A category with attribute definitions
(`open311_services`) has `metadata: true`, and `services/{code}` lists them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.services.errors import Invalid
from minsheng.services.open311_keys import Open311Error
from minsheng.services.schemas import clean_text
from minsheng.storage.models import Category
from minsheng.storage.open311_tables import Open311Service

Datatype = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
LISTS = ("singlevaluelist", "multivaluelist")
MAX_ATTRIBUTES = 50
MAX_VALUE = 500  # one attribute value (a `text` one: MAX_TEXT)
MAX_TEXT = 4000


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    key: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)


class AttributeDef(BaseModel):
    """One attribute of a service definition, with GeoReport's fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    variable: bool = True
    code: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,50}$")
    datatype: Datatype = "string"
    required: bool = False
    datatype_description: str | None = Field(default=None, max_length=200)
    order: int = Field(default=1, ge=0, le=10_000)
    description: str = Field(min_length=1, max_length=500)
    values: list[Choice] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _lists_have_values(self) -> AttributeDef:
        if self.datatype in LISTS and not self.values:
            raise ValueError(f"a {self.datatype} needs values")
        if self.datatype not in LISTS and self.values:
            raise ValueError(f"a {self.datatype} takes no values")
        if len({v.key for v in self.values}) != len(self.values):
            raise ValueError("value keys must be distinct")
        return self


class ServiceDef(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    description: str | None = Field(default=None, max_length=500)
    keywords: str | None = Field(default=None, max_length=200)
    attributes: list[AttributeDef] = Field(default_factory=list, max_length=MAX_ATTRIBUTES)

    @model_validator(mode="after")
    def _distinct_codes(self) -> ServiceDef:
        codes = [a.code for a in self.attributes]
        if len(set(codes)) != len(codes):
            raise ValueError("attribute codes must be distinct")
        return self


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    group: str
    description: str
    keywords: str
    attributes: list[AttributeDef]


def _leaves(session: Session) -> list[tuple[Category, str]]:
    """The active leaf categories with their group (ancestors' names), in code order."""
    cats = list(session.scalars(select(Category).order_by(Category.code)))
    by_id = {c.id: c for c in cats}
    parents = {c.parent_id for c in cats if c.active and c.parent_id is not None}
    out = []
    for c in cats:
        if not c.active or c.id in parents:
            continue
        names: list[str] = []
        p = by_id.get(c.parent_id) if c.parent_id is not None else None
        while p is not None:
            names.append(p.name)
            p = by_id.get(p.parent_id) if p.parent_id is not None else None
        out.append((c, " / ".join(reversed(names))))
    return out


def _attributes(raw: Any) -> list[AttributeDef]:
    # Stored through `set_definition`, so valid; a row edited by hand that no longer is shows no attributes
    # rather than breaking every services call.
    try:
        return ServiceDef(attributes=raw or []).attributes
    except ValidationError:
        return []


def catalogue(session: Session) -> list[Service]:
    """Every service, in code order."""
    defs = {d.service_code: d for d in session.scalars(select(Open311Service))}
    out = []
    for c, group in _leaves(session):
        d = defs.get(c.code)
        out.append(
            Service(
                code=c.code,
                name=c.name,
                group=group,
                description=(d.description if d and d.description else c.name),
                keywords=(d.keywords or "") if d else "",
                attributes=sorted(_attributes(d.attributes), key=lambda a: a.order) if d else [],
            )
        )
    return out


def service(session: Session, code: str) -> Service:
    """One service by its code; Open311Error 404 when no service has it."""
    hit = next((s for s in catalogue(session) if s.code == code), None)
    if hit is None:
        raise Open311Error(404, f"service_code {code} was not found")
    return hit


def services_list(session: Session) -> list[dict[str, Any]]:
    """GET services: the fields in the specification's order."""
    return [
        {
            "service_code": s.code,
            "service_name": s.name,
            "description": s.description,
            "metadata": bool(s.attributes),
            "type": "realtime",
            "keywords": s.keywords,
            "group": s.group,
        }
        for s in catalogue(session)
    ]


def definition(session: Session, code: str) -> dict[str, Any]:
    """GET services/{code}: the service definition."""
    s = service(session, code)
    return {
        "service_code": s.code,
        "attributes": [
            {
                "variable": a.variable,
                "code": a.code,
                "datatype": a.datatype,
                "required": a.required,
                "datatype_description": a.datatype_description,
                "order": a.order,
                "description": a.description,
                "values": [{"key": v.key, "name": v.name} for v in a.values],
            }
            for a in s.attributes
        ],
    }


# ------------------------------------------------------------------------------------------------ admin
def definitions(session: Session) -> list[tuple[Service, str]]:
    """Every service with its attributes as editable JSON (the admin page)."""
    return [
        (s, json.dumps([a.model_dump(exclude_none=True) for a in s.attributes], ensure_ascii=False, indent=1))
        for s in catalogue(session)
    ]


def set_definition(
    session: Session,
    code: str,
    description: str | None,
    keywords: str | None,
    attributes_json: str,
    now: datetime,
) -> Open311Service:
    """Set a service's description, keywords and attributes (JSON: a list of GeoReport attribute objects).
    Invalid names the first problem; an audited change (`services.audit`)."""
    if not any(c.code == code for c, _ in _leaves(session)):
        raise Invalid(f"{code} is not an Open311 service (an active leaf category)", field="service_code")
    try:
        raw = json.loads(attributes_json or "[]")
        spec = ServiceDef(description=description or None, keywords=keywords or None, attributes=raw)
    except json.JSONDecodeError as e:
        raise Invalid(
            f"attributes are not valid JSON: {e.msg} (line {e.lineno})", field="attributes"
        ) from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise Invalid(f"attributes: {where}: {first.get('msg')}", field="attributes") from None
    row = session.get(Open311Service, code)
    if row is None:
        row = Open311Service(service_code=code, updated_at=now)
        session.add(row)
    row.description = spec.description
    row.keywords = spec.keywords
    row.attributes = [a.model_dump(exclude_none=True) for a in spec.attributes]
    row.updated_at = now
    session.flush()
    return row


# ------------------------------------------------------------------------------------------- submissions
def _one(a: AttributeDef, value: str) -> str:
    """A submitted value checked against its datatype; returned as shown in the ticket's text."""
    if a.datatype == "number":
        try:
            number = float(value)
        except ValueError:
            raise Open311Error(400, f"attribute {a.code} must be a number") from None
        if not math.isfinite(number):
            raise Open311Error(400, f"attribute {a.code} must be a finite number")
    elif a.datatype == "datetime":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise Open311Error(400, f"attribute {a.code} must be an ISO 8601 date and time") from None
    elif a.datatype == "singlevaluelist":
        names = {v.key: v.name for v in a.values}
        if value not in names:
            raise Open311Error(400, f"attribute {a.code}: {value!r} is not one of its values")
        return names[value]
    limit = MAX_TEXT if a.datatype == "text" else MAX_VALUE
    if len(value) > limit:
        raise Open311Error(400, f"attribute {a.code} is longer than {limit} characters")
    return value


def checked_attributes(s: Service, submitted: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """(description, value as text) of each attribute the submission gives, in order; Open311Error 400 for a
    required one missing, or a value of the wrong type or not in its list.

    Attributes the definition does not name are kept as they come (code and value), after the defined ones:
    clients send some of their own (FixMyStreet: its report's URL, title, id), and losing them would lose what
    the citizen typed."""
    known = {a.code: a for a in s.attributes}
    unknown = sorted(set(submitted) - set(known))
    if len(unknown) > MAX_ATTRIBUTES:
        raise Open311Error(400, f"too many attributes (at most {MAX_ATTRIBUTES} undefined ones)")
    out: list[tuple[str, str]] = []
    for a in s.attributes:
        values = [v.strip() for v in submitted.get(a.code, []) if v.strip()]
        if not values:
            if a.required and a.variable:
                raise Open311Error(400, f"attribute {a.code} is required ({a.description})")
            continue
        for v in values:
            try:
                clean_text(v, one_line=a.datatype != "text")
            except ValueError:
                raise Open311Error(400, f"attribute {a.code} holds a control character") from None
        if a.datatype == "multivaluelist":
            names = {v.key: v.name for v in a.values}
            bad = [v for v in values if v not in names]
            if bad:
                raise Open311Error(400, f"attribute {a.code}: {bad[0]!r} is not one of its values")
            out.append((a.description, "、".join(names[v] for v in values)))
        else:
            if len(values) > 1:
                raise Open311Error(400, f"attribute {a.code} takes one value")
            out.append((a.description, _one(a, values[0])))
    for code in unknown:
        for v in submitted[code]:
            v = v.strip()
            if not v:
                continue
            if len(v) > MAX_VALUE:
                raise Open311Error(400, f"attribute {code} is longer than {MAX_VALUE} characters")
            try:
                clean_text(v, one_line=True)
            except ValueError:
                raise Open311Error(400, f"attribute {code} holds a control character") from None
            out.append((code, v))
    return out
