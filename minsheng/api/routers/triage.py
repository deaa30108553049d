"""Triage API: the routing table (admin), places, settings, cluster warnings, corrections, model and suggestions.

Mounted by `minsheng.api.app.install`; changes to rules, places and settings reload the
runtime of this process at once (other processes notice within ``stale_check_seconds``).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from pydantic import Field, field_validator

from minsheng.api.deps import CurrentUser, SmallIdPath, StateDep, require_roles
from minsheng.domain.roles import Role
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services import org, places
from minsheng.services import schemas as s
from minsheng.services.errors import Invalid
from minsheng.services.suggest import suggest
from minsheng.services.triage import analysis, clusters, routing_admin, status, training
from minsheng.services.triage import settings as triage_settings

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/triage", tags=["triage"])
AdminOnly = require_roles(Role.ADMIN)
Desk = require_roles(Role.OPERATOR, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN)
Oversight = require_roles(Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER, Role.ADMIN)
MAX_UPLOAD = 5 * 1024 * 1024
MAX_OFFSET = 1_000_000  # a database driver refuses offsets beyond 64 bits; no list is this long


# ------------------------------------------------------------------------------------------------ routing rules
@router.get("/rules", dependencies=[Oversight])
def list_rules(
    session: ReadSession,
    category: Annotated[str | None, Query(pattern=s.CODE_RE)] = None,
    area: Annotated[str | None, Query(pattern=s.CODE_RE)] = None,
    unit: Annotated[str | None, Query(pattern=s.CODE_RE)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    rows = routing_admin.list_rules(
        session, category=category, area=area, unit=unit, limit=limit, offset=offset
    )
    return [routing_admin.rule_json(r) for r in rows]


@router.get("/rules/{rule_id}", dependencies=[Oversight])
def get_rule(session: ReadSession, rule_id: SmallIdPath) -> dict[str, Any]:
    return routing_admin.rule_json(routing_admin.get_rule(session, rule_id))


@router.post("/rules", status_code=201, dependencies=[AdminOnly])
def create_rule(
    state: StateDep, session: WriteSession, user: CurrentUser, body: routing_admin.RuleIn
) -> dict[str, Any]:
    row = routing_admin.create_rule(session, body, user.username, state.clock.now())
    org.on_commit(session, state.triage.reload_org)
    return routing_admin.rule_json(row)


@router.put("/rules/{rule_id}", dependencies=[AdminOnly])
def update_rule(
    state: StateDep,
    session: WriteSession,
    user: CurrentUser,
    rule_id: SmallIdPath,
    body: routing_admin.RuleIn,
) -> dict[str, Any]:
    row = routing_admin.update_rule(session, rule_id, body, user.username, state.clock.now())
    org.on_commit(session, state.triage.reload_org)
    return routing_admin.rule_json(row)


@router.delete("/rules/{rule_id}", status_code=204, dependencies=[AdminOnly])
def delete_rule(state: StateDep, session: WriteSession, rule_id: SmallIdPath) -> None:
    routing_admin.delete_rule(session, rule_id, state.clock.now())
    org.on_commit(session, state.triage.reload_org)


@router.post("/rules/import", dependencies=[AdminOnly])
def import_rules(
    state: StateDep,
    session: WriteSession,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="CSV or XLSX with lead_unit and optional other columns")],
    replace: bool = False,
) -> dict[str, Any]:
    name = Path(file.filename or "rules.csv").name
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".xlsx", ".xlsm"):
        raise Invalid("upload a .csv or .xlsx file")
    data = file.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise Invalid(f"file larger than {MAX_UPLOAD // (1024 * 1024)} MB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        report = routing_admin.import_routing(
            session, path, state.clock.now(), replace=replace, by=user.username
        )
    org.on_commit(session, state.triage.reload_org)
    return {
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.skipped,
        "errors": [{"row": n, "message": m} for n, m in report.errors],
    }


@router.get("/route", dependencies=[Oversight])
def route(
    state: StateDep,
    category: Annotated[str, Query(pattern=s.CODE_RE)],
    area: Annotated[str | None, Query(pattern=s.CODE_RE)] = None,
) -> dict[str, Any]:
    """How the routing table decides for one category × area (for admins checking their rules)."""
    runtime = state.triage
    out = analysis.route_json(runtime.org.table.route(category, area), runtime.org)
    assert out is not None
    return out


@router.get("/corrections", dependencies=[Oversight])
def corrections(
    session: ReadSession,
    min_return_rate: Annotated[float, Query(ge=0, le=1)] = 0.3,
    min_dispatches: Annotated[int, Query(ge=1, le=100_000)] = 10,
) -> list[dict[str, Any]]:
    """Routes that units keep returning, with a suggested unit (from the dispatch/return/sign history)."""
    return routing_admin.routing_corrections(
        session, min_return_rate=min_return_rate, min_dispatches=min_dispatches
    )


# ------------------------------------------------------------------------------------------------------ places
@router.get("/places", dependencies=[Oversight])
def list_places(
    session: ReadSession,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    return places.list_places(session, limit=limit, offset=offset)


@router.post("/places", status_code=201, dependencies=[AdminOnly])
def create_place(state: StateDep, session: WriteSession, body: routing_admin.PlaceIn) -> dict[str, Any]:
    p = routing_admin.create_place(session, body)
    org.on_commit(session, state.triage.reload_org)
    return {"id": p.id, "name": p.name, "area_code": body.area_code}


# ---------------------------------------------------------------------------------------------------- settings
class SettingIn(s.Strict):
    value: Any = Field(description="a number, text or null, depending on the setting")

    @field_validator("value")
    @classmethod
    def _plain_number(cls, v: Any) -> Any:
        # JSON lets through NaN, Infinity and integers of any length; no setting can hold them.
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("a setting must be a finite number")
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > s.MAX_ID:
            raise ValueError("a setting's number is too large")
        return v


@router.get("/settings", dependencies=[Oversight])
def get_settings(state: StateDep, session: ReadSession) -> dict[str, Any]:
    runtime = state.triage
    return {"effective": asdict(runtime.config), "overrides": triage_settings.read_settings(session)}


@router.put("/settings/{key}", dependencies=[AdminOnly])
def put_setting(
    state: StateDep, session: WriteSession, user: CurrentUser, key: str, body: SettingIn
) -> dict[str, Any]:
    value = triage_settings.write_setting(session, key, body.value, user.username, state.clock.now())
    org.on_commit(session, state.triage.reload_org)
    return {"key": key, "value": value}


@router.delete("/settings/{key}", status_code=204, dependencies=[AdminOnly])
def delete_setting(state: StateDep, session: WriteSession, key: str) -> None:
    triage_settings.delete_setting(session, key)
    org.on_commit(session, state.triage.reload_org)


@router.post("/reload", dependencies=[AdminOnly])
def reload(state: StateDep) -> dict[str, Any]:
    runtime = state.triage
    runtime.load_model() if runtime.settings.model_dir else None
    runtime.reload()
    return status.model_status(runtime)


# -------------------------------------------------------------------------------------------- cluster warnings
@router.get("/clusters", dependencies=[Oversight])
def list_clusters(
    session: ReadSession,
    state: Annotated[str | None, Query(pattern=r"^(open|acknowledged)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    return clusters.clusters_json(session, clusters.list_clusters(session, state=state, limit=limit))


class AckIn(s.Strict):
    note: str | None = Field(default=None, max_length=2000)


@router.post("/clusters/{cluster_id}/acknowledge", dependencies=[require_roles(Role.SUPERVISOR, Role.ADMIN)])
def acknowledge(
    state: StateDep,
    session: WriteSession,
    user: CurrentUser,
    cluster_id: SmallIdPath,
    body: AckIn | None = None,
) -> dict[str, Any]:
    row = clusters.acknowledge_cluster(
        session, cluster_id, user.username, body.note if body else None, state.clock.now()
    )
    return clusters.clusters_json(session, [row])[0]


# ------------------------------------------------------------------------------------------------------- model
@router.get("/model", dependencies=[Oversight])
def model(state: StateDep) -> dict[str, Any]:
    return status.model_status(state.triage)


@router.get("/jobs", dependencies=[Oversight], summary="Deferred triage: tickets waiting for their analysis")
def jobs(state: StateDep) -> dict[str, Any]:
    """With `MINSHENG_TRIAGE_MODE=deferred`: how many stored tickets wait for triage and for how long."""
    from minsheng.services.triage.jobs import backlog

    return {"mode": state.settings.triage_mode, **backlog(state.db, state.clock.now())}


class RetrainIn(s.Strict):
    level: int | None = Field(default=None, ge=1, le=3, description="category level to train on (default 3)")


@router.post("/model/retrain", dependencies=[AdminOnly])
def retrain(state: StateDep, body: RetrainIn | None = None) -> dict[str, Any]:
    """Train a new model version from the closed tickets and swap it in (takes seconds to a minute)."""
    runtime = state.triage
    record = training.retrain(runtime, state.clock.now(), body.level if body else None)
    return {"training": record, "model": status.model_status(runtime)}


# ------------------------------------------------------------------------------------------------- suggestions
class SuggestIn(s.Strict):
    title: str | None = Field(default=None, max_length=200)
    detail: str | None = Field(default=None, max_length=s.MAX_DETAIL)
    address: str | None = Field(default=None, max_length=300)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    phone: str | None = Field(default=None, max_length=32)


@router.post("/suggest", dependencies=[Desk])
def suggest_endpoint(state: StateDep, session: ReadSession, body: SuggestIn) -> dict[str, Any]:
    """Suggestions for the operator desk while a request is being typed."""
    return suggest(session, state.triage, **body.model_dump())
