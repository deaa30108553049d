"""Fuzzing every route and method: whatever a client sends, the server never answers 5xx.

The routes come from the app itself (`iter_route_contexts`: the JSON API, the console and portal pages, the
screen, the static files), bodies of the JSON API from its OpenAPI schema, the pages' forms from the fields they
read. Two passes per route and method:

* a sweep, one factor at a time: a request that the route accepts (found by trying the roles in turn), then
  the same request with one path parameter, query parameter, JSON leaf or dict key, form field or header
  replaced by a troublemaker (numbers no database column holds, digits that are not ASCII, dates that do not
  exist or leave the calendar when moved to UTC, NUL bytes, text longer than any column, wrong types, NaN);
* property-based requests (hypothesis, derandomized: CI always sends the same ones) that mix all of that with
  random roles, repeated and unknown parameters, broken JSON, deep nesting, uploads, forged cookies, CSRF
  tokens and bearer tokens, odd content types and HTMX headers.

``MINSHENG_FUZZ_EXAMPLES`` raises the number of hypothesis examples per route, ``MINSHENG_FUZZ_EXPLORE=1``
sweeps with every troublemaker instead of a few per type, and ``MINSHENG_FUZZ_TRACE=1`` adds the server's
traceback to each failure: together they make the long exploratory run.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from minsheng.asgi import create_app
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.domain.transitions import AssignmentAction, TicketAction
from minsheng.notify.templates import TEMPLATES
from minsheng.storage.db import Database
from minsheng.web.console import INTAKE_FIELDS
from tests.conftest import pg_skip_reason
from tests.factories import PASSWORD, png, small_city

EXAMPLES = int(os.environ.get("MINSHENG_FUZZ_EXAMPLES", "2"))
EXPLORE = bool(os.environ.get("MINSHENG_FUZZ_EXPLORE"))
ROLES = ["operator1", "dispatcher1", "supervisor1", "followup1", "leader1", "admin", "h_zjj", "h_cgj", None]
# The order in which the sweep looks for a role that the route lets in.
PROBE_ORDER = ["admin", "dispatcher1", "supervisor1", "operator1", "followup1", "h_zjj", "leader1", None]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
PNG = png()
SKIP_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# Routes that change who the client is: each request gets a client of its own.
SESSION_ROUTES = {"/login", "/logout", "/api/v1/auth/login", "/api/v1/auth/logout"}
LOGIN_ROUTES = {"/login", "/api/v1/auth/login"}

# ------------------------------------------------------------------------------------------- troublemakers
NUMBER_NASTY = [
    "0",
    "-1",
    "1.5",
    "1e3",
    "99999999999999999999",
    "9223372036854775808",
    "-9223372036854775809",
    "nan",
    "inf",
    "²",
    "٣٣٣٣٣٣٣٣",
    "𝟙𝟚𝟛𝟜𝟝𝟞𝟟𝟠𝟡",
]
DATE_NASTY = [
    "2026-13-45",
    "2026-02-30",
    "2026-11-21T25:61:00+08:00",
    "2026-11-21T00:00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01",
    "9999-12-31",
]
TEXT_NASTY = [
    "",
    " ",
    "中文",
    "a\x00b",
    "%00",
    "x" * 5000,
    "../../etc/passwd",
    "%",
    "'",
    '"',
    "\\",
    "<script>alert(1)</script>",
    "\r\nX-Injected: 1",
    "😀\u202e\ufeff",
    "a:b* AND OR NOT",
    "{}",
    "true",
    "null",
]
PARAM_NASTY: list[str] = NUMBER_NASTY + DATE_NASTY + TEXT_NASTY
NASTY_JSON: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**31,
    2**63,
    -(2**63) - 1,
    10**20,
    10**400,
    1.5,
    1e300,
    -1e300,
    float("nan"),
    float("inf"),
    float("-inf"),
    [],
    {},
    [None],
    [1, "a", None],
    {"a": {"b": [1, {"c": None}]}},
    json.loads("[" * 30 + "1" + "]" * 30),
    "x" * 20_000,
    *PARAM_NASTY,
]
# The sweep's few troublemakers per kind of value (all of them with MINSHENG_FUZZ_EXPLORE).
SWEEP: dict[str, list[Any]] = {
    "id": ["99999999999999999999", "2147483648", "-1", "²"],
    "path": ["a\x00b", "中文", "x" * 300, "99999999999999999999"],
    "query_int": ["99999999999999999999", "-1", "²"],
    "query_number": ["nan", "1e999", "-1"],
    "query_date": [
        "2026-13-45",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2026-11-21T00:00:00",
    ],
    "query": ["a\x00b", "x" * 5000, "99999999999999999999"],
    "string": [7, "x" * 20_000],
    "integer": ["1", 2**31, 10**20],
    "number": [float("nan"), 1e300, 10**400],
    "boolean": ["maybe"],
    "array": [None, [10**20], ["a\x00b"]],
    "object": [None, []],
    "any": [float("inf"), 10**400, 1e300, "a\x00b", [[[]]]],
    "key": ["x" * 300, "a\x00b"],
    "form_number": ["99999999999999999999", "²", "nan"],
    "form": ["x" * 5000],
}
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
UPLOADS = [PNG, b"", b"\x00" * 10, b"PK\x03\x04garbage", b"code,name\n\xff\xfe,\x00\n", b"a,b\n" * 50]
CONTENT_TYPES = [
    "text/plain",
    "application/xml",
    "application/json; charset=latin-1",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=zzz",
    "application/json",
    "",
    "\x7f",
]
ODD_HEADER_VALUES: list[bytes] = [
    b"",
    b"short",
    b"k" * 7,
    b"k" * 8,
    b"k" * 128,
    b"k" * 129,
    b"k" * 10_000,
    "中文中文中文中文".encode(),
    b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8",
    b"key with spaces and ; , = \" ' chars",
    b"../../../../etc",
    b"\x01\x02\x03\x04\x05\x06\x07\x08",
]
HEADER_TROUBLE: list[tuple[str, bytes]] = [
    ("content-type", b"text/plain"),
    ("content-type", b"multipart/form-data"),
    ("x-csrf-token", "伪造的令牌".encode()),
    ("idempotency-key", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"),
    ("idempotency-key", b"k" * 129),
    ("cookie", b"minsheng_session=\xff\xfe; minsheng_form=" + b"x" * 5000),
    ("authorization", b"Bearer \xff\xfe"),
    ("hx-request", b"true"),
    ("accept", b"text/html;q=abc, */*;q=, ;;;"),
]

# Query parameters the pages read (the JSON API's come from its schema).
PAGE_QUERY: dict[str, list[str]] = {
    "/login": ["next"],
    "/desk": ["n"],
    "/queue": ["sel"],
    "/tickets": ["q", "state", "cursor"],
    "/track": ["number"],
    "/help": ["q"],
    "/kb": ["q", "edit"],
    "/screen/events": ["once"],
    "/admin/{kind}": ["level"],
    "/admin/{kind}/export": ["format"],
}
COMMON_QUERY = ["msg", "err", "at"]
# The fields each page's form reads.
PAGE_FORMS: dict[str, list[str]] = {
    "/login": ["username", "password", "next"],
    "/desk": [*INTAKE_FIELDS, "action", "answer", "target", "note", "confidential", "public_consent"],
    "/desk/suggest": ["title", "detail", "address", "lat", "lon", "citizen_phone"],
    "/": [*INTAKE_FIELDS, "confidential", "public_consent"],
    "/track": ["number", "query_code"],
    "/track/rate": ["number", "query_code", "rating", "comment"],
    "/tickets/{number}/act/{action}": [
        *["next", "lead_unit", "assist_units", "reason", "note", "answer", "target", "ticket"],
        *["participants", "decision", "hours", "extension_id", "approve", "rating", "comment", "method"],
    ],
    "/assignments/{assignment_id}/act/{action}": [
        "next",
        "at",
        "note",
        "reason",
        "method",
        "text",
        "summary",
    ],
    "/admin/{kind}": [
        *["code", "name", "level", "parent_code", "kind", "area_code", "duty_tier", "phone", "leader_name"],
        *["username", "display_name", "role", "unit_code", "password"],
    ],
    "/kb": ["id", "kind", "title", "body", "category_code", "department", "keywords", "public"],
}
FORM_FIELDS = sorted({f for fields in PAGE_FORMS.values() for f in fields} | {"csrf_token", "id"})
# Values that pass a field's own checks, so that a troublemaker in one field meets the code behind them.
GOOD: dict[str, Any] = {
    "detail": "幸福路3号路灯坏了，晚上很黑",
    "title": "路灯坏了",
    "address": "幸福路3号",
    "lat": 30.25,
    "lon": 120.16,
    "citizen_name": "张三",
    "citizen_phone": "13800138000",
    "citizen_id_number": "11010519491231002X",
    "channel": "phone",
    "kind": "complaint",
    "urgency": "normal",
    "category_code": "010101",
    "area_code": "C0101",
    "answer": "已电话答复",
    "target": "110",
    "note": "备注",
    "reason": "不属于本单位职责",
    "lead_unit": "CGJ",
    "assist_units": ["HBJ"],
    "participants": ["CGJ"],
    "decision": "由城管局主办",
    "hours": 24,
    "approve": True,
    "rating": "satisfied",
    "comment": "很好",
    "method": "phone",
    "text": "已修复",
    "summary": "已修复",
    "username": "h_zjj",
    "password": PASSWORD,
    "display_name": "新用户",
    "role": "operator",
    "unit_code": "ZJJ",
    "code": "NEW1",
    "name": "新名称",
    "level": "street",
    "parent_code": "C01",
    "phone": "13800138000",
    "leader_name": "李四",
    "duty_tier": 2,
    "query_code": "123456",
    "next": "/tickets",
    "at": "a1",
    "body": "路灯坏了请拨打城管热线",
    "department": "城管局",
    "keywords": "路灯",
    "public": True,
    "confidential": False,
    "public_consent": True,
    "action": "intake",
    "amount": 20,
    "unit": "minutes",
    "after_minutes": 30,
    "zone": "urban",
    "first": "2026-10-01",
    "last": "2026-10-07",
    "starts_at": "2026-11-21T08:00:00+08:00",
    "ends_at": "2026-11-21T20:00:00+08:00",
    "person_name": "值班员",
    "duty_role": "duty",
    "tier": 2,
    "value": 0.5,
    "ids": [1],
    "priority": 1,
    "enabled": True,
}
DICT_KEYS = {"limits": "sign", "escalation": "sign"}
NUMERIC_FORM_FIELDS = {
    "lat",
    "lon",
    "hours",
    "extension_id",
    "duty_tier",
    "id",
    "number",
    "ticket",
    "at",
    "next",
}


# ------------------------------------------------------------------------------------------------ the world
@dataclass
class World:
    """The app, a client per role, the ids of things that exist, and the API's schema."""

    app: Any
    clients: dict[str | None, TestClient]
    good: dict[str, list[str]]
    spec: dict[str, Any]


def _new_client(app: Any, raising: bool = False) -> TestClient:
    c = TestClient(app, raise_server_exceptions=raising)
    # The running client's event loop: a client of its own would start a thread and a loop per request.
    c.portal = app.state.fuzz_portal
    return c


def _client(app: Any, username: str | None, raising: bool = False) -> TestClient:
    c = _new_client(app, raising)
    if username is None:
        # The anonymous forms' CSRF token lives in a cookie that every page sets.
        c.get("/track")
        token = c.cookies.get("minsheng_form")
        if token:
            c.headers["X-CSRF-Token"] = token
        return c
    r = c.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def _seed(clients: dict[str | None, TestClient]) -> dict[str, list[str]]:
    """Tickets in two states, an assignment, an attachment, a policy, a shift, a rule and a KB entry."""
    op, disp, admin, zjj = clients["operator1"], clients["dispatcher1"], clients["admin"], clients["h_zjj"]
    numbers = []
    for i in range(3):
        body = {"detail": f"幸福路{i}号路灯坏了，晚上很黑", "category_code": "010101", "area_code": "C0101"}
        r = op.post("/api/v1/tickets", json=body)
        assert r.status_code == 201, r.text
        numbers.append(r.json()["number"])
    disp.post(f"/api/v1/tickets/{numbers[0]}/dispatch", json={"lead_unit": "ZJJ"})
    t = zjj.get(f"/api/v1/tickets/{numbers[0]}").json()
    assignments = [str(a["id"]) for a in t.get("assignments", [])] or ["1"]
    att = op.post(f"/api/v1/tickets/{numbers[0]}/attachments", files={"file": ("a.png", PNG, "image/png")})
    policy = admin.post(
        "/api/v1/clock/policies", json={"limits": {"sign": {"amount": 20, "unit": "minutes"}}}
    )
    shift = admin.post(
        "/api/v1/clock/rosters",
        json={"username": "h_zjj", "starts_at": GOOD["starts_at"], "ends_at": GOOD["ends_at"]},
    )
    rule = admin.post("/api/v1/triage/rules", json={"category_code": "010101", "lead_unit": "CGJ"})
    admin.post("/kb", data={"title": "路灯报修", "body": "路灯坏了请拨打城管热线", "kind": "answer"})
    return {
        "number": [numbers[1], numbers[0], numbers[2], "2026112199999"],
        "assignment_id": [*assignments, "999999"],
        "attachment_id": [str(att.json().get("id", 1)), "999999"],
        "policy_id": [str(policy.json().get("id", 1)), "999999"],
        "shift_id": [str(shift.json().get("id", 1)), "999999"],
        "rule_id": [str(rule.json().get("id", 1)), "999999"],
        "entry_id": ["1", "999999"],
        "cluster_id": ["1", "999999"],
        "day": ["2026-10-01", "2026-11-21"],
        "kind": ["units", "areas", "users", "categories", *TEMPLATES, "nope"],
        "key": [
            "auto_threshold",
            "cluster_min_count",
            "cluster_match",
            "stale_check_seconds",
            "repeat_window_days",
            "cluster_window_days",
            "nope",
        ],
        "action": [
            "dispatch",
            *(a.value for a in TicketAction),
            *(a.value for a in AssignmentAction),
            "nope",
        ],
        "path": ["app.css", "app.js", "../pages.py", "%2e%2e/%2e%2e/config.py", "nope.css"],
        "ticket": [numbers[2]],
        "number_field": [numbers[1]],
        "edit": ["1"],
        "sel": [numbers[1]],
        "state": ["accepted", "closed"],
        "query_code": ["123456"],
        "format": ["csv", "xlsx"],
        "category": ["010101"],
        "unit": ["ZJJ"],
        "area": ["C01"],
    }


@pytest.fixture
def world(db: Database, db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[World]:
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
    cfg = Settings(database_url=db_url, data_dir=tmp_path / "data", embedded_worker=False, environment="test")
    app = create_app(cfg, clock=clock, db=db)
    with TestClient(app, raise_server_exceptions=False) as boot:
        # The live ticket feed would hold each request for its full 25 s: stopped, it ends at once.
        app.state.minsheng_stream_stop.set()
        app.state.fuzz_portal = boot.portal
        clients = {u: _client(app, u) for u in ROLES}
        yield World(app=app, clients=clients, good=_seed(clients), spec=boot.get("/openapi.json").json())


# ------------------------------------------------------------------------------------------------ the routes
@dataclass(frozen=True)
class Op:
    """One route × method: its parameters and the kind of body it reads."""

    path: str
    method: str
    params: dict[str, dict[str, Any]]  # path parameters and their schemas
    query: dict[str, dict[str, Any]]  # query parameters and their schemas
    required: tuple[str, ...]  # required query parameters
    body: str  # "json", "multipart", "form" or "none"
    schema: dict[str, Any] | None
    declared: bool  # the route accepts this method


def operations(world: World) -> list[Op]:
    accepted: dict[str, set[str]] = {}
    for ctx in iter_route_contexts(world.app.routes):
        if ctx.path and ctx.path not in SKIP_PATHS:
            # The static files mount has no methods of its own.
            path = ctx.path if ctx.methods else "/static/{path}"
            accepted.setdefault(path, set()).update(ctx.methods or {"GET"})
    ops: list[Op] = []
    for path, methods in accepted.items():
        for method in METHODS:
            declared = method in methods
            spec_op = world.spec["paths"].get(path, {}).get(method.lower(), {}) if declared else {}
            parameters = spec_op.get("parameters", [])
            query = {p["name"]: p.get("schema", {}) for p in parameters if p["in"] == "query"}
            required = tuple(p["name"] for p in parameters if p["in"] == "query" and p.get("required"))
            params = {p["name"]: p.get("schema", {}) for p in parameters if p["in"] == "path"}
            for name in re.findall(r"\{(\w+)(?::\w+)?\}", path):
                params.setdefault(name, {"type": "integer"} if name.endswith("_id") else {})
            if declared and not spec_op:
                query = {q: {} for q in PAGE_QUERY.get(path, []) + COMMON_QUERY}
            content = spec_op.get("requestBody", {}).get("content", {})
            body, schema = "none", None
            if "application/json" in content:
                body, schema = "json", content["application/json"].get("schema", {})
            elif "multipart/form-data" in content or path.endswith("/import"):
                body = "multipart"
            elif method in ("POST", "PUT", "PATCH"):
                body, schema = ("json", {}) if path.startswith("/api/") else ("form", None)
            ops.append(Op(path, method, params, query, required, body, schema, declared))
    return ops


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _kind(schema: dict[str, Any], spec: dict[str, Any]) -> str:
    """The JSON type a schema asks for (the first non-null one of a union), or "any"."""
    schema = _resolve(schema, spec)
    for sub in schema.get("anyOf", []):
        k = _kind(sub, spec)
        if k != "null":
            return k
    if "enum" in schema:
        return "string"
    if schema.get("format") in ("date", "date-time"):
        return "date"
    if "patternProperties" in schema or isinstance(schema.get("additionalProperties"), dict):
        return "dict"
    return str(schema.get("type", "any"))


def _dict_values(schema: dict[str, Any]) -> dict[str, Any]:
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    return next(iter(schema.get("patternProperties", {}).values()), {})


# -------------------------------------------------------------------------------------------- valid bodies
def valid_json(schema: dict[str, Any], spec: dict[str, Any], name: str = "", depth: int = 0) -> Any:
    """A value the schema accepts, built from GOOD where the field is known."""
    schema = _resolve(schema, spec)
    if depth > 5:
        return None
    if name in GOOD and _kind(schema, spec) != "dict":
        return GOOD[name]
    if "default" in schema:
        return schema["default"]
    for sub in schema.get("anyOf", []):
        if _kind(sub, spec) != "null":
            return valid_json(sub, spec, name, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    kind = _kind(schema, spec)
    if kind == "dict":
        return {DICT_KEYS.get(name, "x"): valid_json(_dict_values(schema), spec, "", depth + 1)}
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: valid_json(v, spec, k, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [valid_json(schema.get("items", {}), spec, name, depth + 1)]
    return {"integer": 1, "number": 1.0, "boolean": True, "date": "2026-11-21"}.get(kind, "有效内容")


def _leaves(
    value: Any, schema: dict[str, Any], spec: dict[str, Any], at: tuple[Any, ...] = ()
) -> Iterator[Any]:
    """(path, kind) of every value in a valid body, and ("key", path) of every dict key."""
    schema = _resolve(schema, spec)
    for sub in schema.get("anyOf", []):
        if _kind(sub, spec) != "null":
            schema = _resolve(sub, spec)
            break
    kind = _kind(schema, spec)
    if at:
        yield at, kind
    if isinstance(value, dict) and kind == "dict":
        for k, v in value.items():
            yield (*at, k), "key"
            yield from _leaves(v, _dict_values(schema), spec, (*at, k))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, schema.get("properties", {}).get(k, {}), spec, (*at, k))
    elif isinstance(value, list) and value:
        yield from _leaves(value[0], schema.get("items", {}), spec, (*at, 0))


def _replace(value: Any, at: tuple[Any, ...], new: Any, key: bool = False) -> Any:
    if not at:
        return new
    head, rest = at[0], at[1:]
    if isinstance(value, dict):
        out = dict(value)
        if key and not rest:
            out[new] = out.pop(head)
            return out
        out[head] = _replace(value[head], rest, new, key)
        return out
    out_list = list(value)
    out_list[head] = _replace(value[head], rest, new, key)
    return out_list


# ------------------------------------------------------------------------------------------------ requests
@dataclass
class Req:
    role: str | None
    method: str
    url: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, bytes] = field(default_factory=dict)
    content: bytes | None = None
    data: dict[str, Any] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None


def _url(op: Op, values: dict[str, str]) -> str:
    # Slashes are the point of a static file path; elsewhere a value is one path segment.
    return re.sub(
        r"\{(\w+)(?::\w+)?\}",
        lambda m: quote(values[m.group(1)], safe="/%" if m.group(1) == "path" else ""),
        op.path,
    )


def _with_nul(body: Any) -> Any:
    if isinstance(body, dict) and body:
        key = next((k for k, v in body.items() if isinstance(v, str)), next(iter(body)))
        return {**body, key: "a\x00b"}
    return "a\x00b"


def _json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _good_form(op: Op, world: World) -> dict[str, Any]:
    fields = PAGE_FORMS.get(op.path, [])
    form = {f: world.good.get(f, [GOOD.get(f, "有效内容")])[0] for f in fields}
    if "number" in form:
        form["number"] = world.good["number_field"][0]
    return {k: ("1" if v is True else "" if v is False else v) for k, v in form.items()}


def baseline(op: Op, world: World, role: str | None) -> Req:
    """A request the route would accept from a user allowed to make it."""
    values = {name: world.good.get(name, ["1"])[0] for name in op.params}
    req = Req(role, op.method, _url(op, values))
    req.query = [(q, str(world.good.get(q, [GOOD.get(q, "x")])[0])) for q in op.required]
    if op.body == "json":
        req.content = _json(valid_json(op.schema or {}, world.spec))
        req.headers["content-type"] = b"application/json"
    elif op.body == "form":
        req.data = _good_form(op, world)
    elif op.body == "multipart":
        req.files = [("file", ("rules.csv", b"code,name\nX1,x\n", "text/csv"))]
    return req


def sweep(op: Op, world: World, role: str | None) -> Iterator[Req]:
    """The baseline with one thing at a time replaced by a troublemaker."""

    def values(kind: str) -> list[Any]:
        if EXPLORE:
            return (
                NASTY_JSON
                if kind in ("string", "integer", "number", "boolean", "array", "object", "any")
                else (PARAM_NASTY)
            )
        return SWEEP[kind]

    base = baseline(op, world, role)
    good_path = {name: world.good.get(name, ["1"])[0] for name in op.params}
    for name, schema in op.params.items():
        kind = "id" if _kind(schema, world.spec) == "integer" else "path"
        for v in values(kind):
            yield Req(
                role,
                op.method,
                _url(op, good_path | {name: v}),
                base.query,
                base.headers,
                base.content,
                base.data,
                base.files,
            )
    for name, schema in op.query.items():
        if name in COMMON_QUERY and op.path != "/":
            continue  # every page shows them through one template: the portal's home stands for all
        kind = {"integer": "query_int", "number": "query_number", "date": "query_date"}.get(
            _kind(schema, world.spec), "query"
        )
        rest = [(k, v) for k, v in base.query if k != name]
        for v in values(kind):
            yield Req(
                role,
                op.method,
                base.url,
                [*rest, (name, v)],
                base.headers,
                base.content,
                base.data,
                base.files,
            )
    if op.body == "json":
        body = valid_json(op.schema or {}, world.spec)
        # Every model refuses NUL in one validator it inherits: once per body shows that this one does.
        yield Req(role, op.method, base.url, base.query, base.headers, _json(_with_nul(body)))
        for at, kind in _leaves(body, op.schema or {}, world.spec):
            is_key = kind == "key"
            pool = values("key" if is_key else kind if kind in SWEEP else "any")
            for v in pool:
                if is_key and not isinstance(v, str):
                    continue
                content = _json(_replace(body, at, v, key=is_key))
                yield Req(role, op.method, base.url, base.query, base.headers, content)
    if op.body == "form":
        for name in PAGE_FORMS.get(op.path, []):
            for v in values("form_number" if name in NUMERIC_FORM_FIELDS else "form"):
                yield Req(role, op.method, base.url, base.query, data=(base.data or {}) | {name: v})
        # Every form is read by one function that refuses NUL: once per page is enough.
        yield Req(role, op.method, base.url, base.query, data=(base.data or {}) | {"csrf_token": "a\x00b"})
        first = next(iter(PAGE_FORMS.get(op.path, [])), "x")
        yield Req(role, op.method, base.url, base.query, data=(base.data or {}) | {first: "a\x00b"})


def header_trouble(op: Op, world: World, role: str | None, index: int) -> Iterator[Req]:
    """One of the odd headers per route, in turn (all of them with MINSHENG_FUZZ_EXPLORE)."""
    for name, value in HEADER_TROUBLE if EXPLORE else [HEADER_TROUBLE[index % len(HEADER_TROUBLE)]]:
        req = baseline(op, world, role)
        req.headers = {**req.headers, name: value}
        yield req


# -------------------------------------------------------------------------------------------- the strategies
def pick(draw: st.DrawFn, good: list[str], nasty: list[str] = PARAM_NASTY) -> str:
    """Mostly a known value or a known troublemaker, now and then arbitrary text."""
    roll = draw(st.integers(0, 19))
    if roll < 7 and good:
        return draw(st.sampled_from(good))
    if roll < 17:
        return draw(st.sampled_from(nasty))
    return draw(st.text(max_size=30))


nasty_json = st.sampled_from(NASTY_JSON)
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def from_schema(schema: dict[str, Any], spec: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that mostly fit the schema (so that requests get past the first check), often junk."""
    schema = _resolve(schema, spec)
    if depth > 4:
        return nasty_json
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return st.one_of([from_schema(s, spec, depth + 1) for s in schema[key]])
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), nasty_json)
    kind = _kind(schema, spec)
    if kind == "date":
        dates = st.dates().map(str) if schema.get("format") == "date" else st.datetimes().map(str)
        return st.one_of(dates, st.sampled_from(DATE_NASTY), nasty_json)
    if kind == "string":
        if "pattern" in schema:
            return st.one_of(st.from_regex(schema["pattern"], fullmatch=True), nasty_json)
        return st.one_of(st.text(max_size=30), nasty_json)
    if kind == "integer":
        return st.one_of(st.integers(-5, 1_000_000), nasty_json)
    if kind == "number":
        return st.one_of(st.floats(), st.integers(-100, 100), nasty_json)
    if kind == "boolean":
        return st.one_of(st.booleans(), nasty_json)
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), spec, depth + 1), max_size=4)
    if kind == "dict":
        keys = st.one_of(
            st.sampled_from(["sign", "resolve", "x"]), st.text(max_size=12), st.sampled_from(PARAM_NASTY)
        )
        return st.dictionaries(keys, from_schema(_dict_values(schema), spec, depth + 1), max_size=3)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {k: from_schema(v, spec, depth + 1) for k, v in props.items() if k in required}
        optional = {k: from_schema(v, spec, depth + 1) for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(fixed, optional=optional)
    return st.one_of(nasty_json, any_json)


@st.composite
def json_body(draw: st.DrawFn, schema: dict[str, Any] | None, spec: dict[str, Any]) -> Any:
    body = draw(from_schema(schema or {}, spec))
    how = draw(st.sampled_from(["as_is", "as_is", "break_field", "add_field", "junk"]))
    if how == "junk":
        return draw(st.one_of(nasty_json, any_json))
    if isinstance(body, dict):
        if how == "break_field" and body:
            body[draw(st.sampled_from(sorted(body)))] = draw(nasty_json)
        elif how == "add_field":
            body[draw(st.sampled_from(["unknown", "", "__proto__", "x" * 300]))] = draw(nasty_json)
    return body


def _enum(schema: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    schema = _resolve(schema, spec)
    values = list(schema.get("enum", []))
    for sub in [*schema.get("anyOf", []), schema.get("items", {})]:
        values += _enum(sub, spec) if sub else []
    return [str(v) for v in values]


@st.composite
def requests(draw: st.DrawFn, op: Op, world: World) -> Req:
    url = _url(op, {name: pick(draw, world.good.get(name, ["1"])) for name in op.params})
    query: list[tuple[str, str]] = []
    for name, schema in op.query.items():
        if name in op.required or draw(st.booleans()):
            good = world.good.get(name, []) + _enum(schema, world.spec)
            query.append((name, pick(draw, good)))
            if draw(st.integers(0, 5)) == 0:
                query.append((name, pick(draw, good)))  # the same parameter twice
    if draw(st.integers(0, 4)) == 0:
        query.append((draw(st.sampled_from(["limit", "offset", "cursor", "x", ""])), pick(draw, [])))
    req = Req(draw(st.sampled_from(ROLES)), op.method, url, query)
    if op.body == "json":
        variant = draw(st.integers(0, 11))
        if variant == 0:
            req.content = DEEP_JSON
        elif variant == 1:
            req.content = draw(st.sampled_from([b"", b"{", b"\xff\xfe", b"null", b'{"a":1}{"b":2}', b"NaN"]))
        else:
            req.content = _json(draw(json_body(op.schema, world.spec)))
        req.headers["content-type"] = b"application/json"
    elif op.body == "multipart":
        name = draw(st.sampled_from(["a.png", "a.csv", "a.xlsx", "../../x.png", "", "中文.csv", "a" * 300]))
        data = draw(st.sampled_from(UPLOADS))
        req.files = [
            (draw(st.sampled_from(["file", "photo", "x"])), (name, data, "application/octet-stream"))
        ]
    elif op.body == "form":
        form: dict[str, Any] = {}
        for f in draw(st.lists(st.sampled_from(FORM_FIELDS), max_size=8, unique=True)):
            form[f] = pick(draw, world.good.get(f, []))
            if draw(st.integers(0, 6)) == 0:
                form[f] = [form[f], pick(draw, [])]
        req.data = form
        if draw(st.integers(0, 4)) == 0:
            name = draw(st.sampled_from(["a.png", "a.csv", "a.xlsx", "../x.png", "中文.png", "a" * 300]))
            upload = (name, draw(st.sampled_from(UPLOADS)), "image/png")
            req.files = [(draw(st.sampled_from(["photo", "file"])), upload)]
    trouble = draw(st.integers(0, 11))
    if trouble == 0:
        req.headers["content-type"] = draw(st.sampled_from(CONTENT_TYPES)).encode("latin-1")
    elif trouble == 1:
        req.headers["idempotency-key"] = draw(st.sampled_from(ODD_HEADER_VALUES))
    elif trouble == 2:
        req.headers["x-csrf-token"] = draw(st.sampled_from(ODD_HEADER_VALUES))
    elif trouble == 3:
        value = draw(st.sampled_from(ODD_HEADER_VALUES))
        req.headers["cookie"] = b"minsheng_session=" + value + b"; minsheng_form=" + value
    elif trouble == 4:
        req.headers["authorization"] = b"Bearer " + draw(st.sampled_from(ODD_HEADER_VALUES))
    elif trouble in (5, 6):
        req.headers["hx-request"] = b"true"
    return req


# --------------------------------------------------------------------------------------------------- sending
def _client_for(world: World, req: Req, raising: bool = False) -> TestClient:
    if "cookie" in req.headers:
        # A stranger with a forged or mangled cookie.
        return _new_client(world.app, raising)
    if req.url in LOGIN_ROUTES and not raising:
        # Logging in changes who the client is: a stranger with the anonymous forms' token does it.
        c = _new_client(world.app)
        c.cookies.set("minsheng_form", "fuzz-form-token")
        c.headers["X-CSRF-Token"] = "fuzz-form-token"
        return c
    if req.url in SESSION_ROUTES or raising:
        # Logging out ends the session: it gets a session of its own.
        return _client(world.app, req.role, raising)
    return world.clients[req.role]


def send(world: World, req: Req, raising: bool = False) -> Any:
    return _client_for(world, req, raising).request(
        req.method,
        req.url,
        params=req.query,
        headers=req.headers,
        content=req.content,
        data=req.data,
        files=req.files,
        follow_redirects=False,
    )


def _describe(world: World, req: Req, r: Any) -> str:
    body = req.content[:300] if req.content else req.data
    files = req.files and [(f, n[:40], d[:20]) for f, (n, d, _) in req.files]
    out = (
        f"{req.method} {req.url[:300]} as {req.role} query={req.query!r:.300} body={body!r:.300} files={files} "
        f"headers={req.headers!r:.300} -> {r.status_code} {r.text[:300]!r}"
    )
    if os.environ.get("MINSHENG_FUZZ_TRACE"):
        # The same request once more through a client that raises, for the server's traceback.
        try:
            send(world, req, raising=True)
        except Exception:
            out += "\n" + "".join(traceback.format_exc().splitlines(keepends=True)[-14:])
    return out


def check(world: World, req: Req) -> int:
    r = send(world, req)
    assert r.status_code < 500, _describe(world, req, r)
    return int(r.status_code)


def choose_role(op: Op, world: World) -> str | None:
    """The first role (in PROBE_ORDER) that the route lets in with a valid request."""
    for role in PROBE_ORDER:
        req = baseline(op, world, role)
        status = check(world, req)
        # A page that a role may not see redirects to the login page or answers 403.
        if status not in (401, 403) and not (300 <= status < 400 and op.method == "GET"):
            return role
    return "admin"


def fuzz_operation(world: World, op: Op, examples: int) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(req=requests(op, world))
    def run(req: Req) -> None:
        check(world, req)

    run()


def test_no_5xx_anywhere(world: World, db_url: str) -> None:
    """Every route × method, swept one factor at a time and fuzzed as every role: never a 5xx.

    The sweep runs once, on PostgreSQL when it is reachable (it refuses more than SQLite does: NUL bytes,
    text longer than a column, numbers beyond 64 bits), else on SQLite; both get the property-based requests.
    """
    full = EXPLORE or db_url.startswith("postgresql") or pg_skip_reason() is not None
    ops = operations(world)
    assert len({(o.path, o.method) for o in ops if o.declared}) >= 120
    failures: list[str] = []
    started = time.monotonic()
    for index, op in enumerate(ops):
        try:
            if not op.declared:
                # Methods a route does not take: the 405 is the framework's, one request per route suffices.
                if METHODS.index(op.method) % 4 == index % 4 or EXPLORE:
                    check(world, baseline(op, world, "admin"))
                continue
            if full:
                role = choose_role(op, world)
                for req in itertools.chain(sweep(op, world, role), header_trouble(op, world, role, index)):
                    check(world, req)
            # Fewer random requests where the sweep ran: the two passes together stay within a minute in CI.
            fuzz_operation(world, op, EXAMPLES if not full or EXPLORE else max(1, EXAMPLES // 2))
        except AssertionError as e:
            failures.append(f"{op.method} {op.path}: {e}")
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} routes answered 5xx ({elapsed:.0f}s):\n" + "\n\n".join(failures)
