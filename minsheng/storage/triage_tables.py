"""Tables of triage (issue 3): the routing table, named places, cluster warnings and triage settings.

Routing rules and places name categories, areas and units by code, the way admins and spreadsheets speak of
them; the service checks every code on write, and the runtime skips (and logs) a rule whose unit has since been
deactivated. A cluster warning's ``key`` is unique, so that of several processes that notice the same cluster,
exactly one records it. A triage job is a ticket taken in while triage is deferred, waiting for its analysis.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base, BigId


class RoutingRule(Base):
    """One row of the routing table: category × area → lead unit and assisting units (None means "any")."""

    __tablename__ = "routing_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    category_code: Mapped[str | None] = mapped_column(String(32))
    area_code: Mapped[str | None] = mapped_column(String(32))
    lead_unit: Mapped[str] = mapped_column(String(32))
    assist_units: Mapped[list[Any]] = mapped_column(JSON, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # A consultation (咨询) is answered at the desk from the knowledge base; only a rule that says so
    # sends consultations of its category and area to its units.
    takes_consultations: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    note: Mapped[str | None] = mapped_column(String(500))
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime]
    # A deleted rule is kept (soft delete, issue 14) and read by nobody: every reader skips it.
    deleted_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_routing_rules_category_area", "category_code", "area_code"),)


class Place(Base):
    """A named place (小区, school, market, road …) lying in one area, found in address text by name or alias."""

    __tablename__ = "places"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="")
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)


class ClusterWarning(Base):
    """一类事预警: similar tickets of one area within a short period, raised once per cluster."""

    __tablename__ = "cluster_warnings"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    category_code: Mapped[str | None] = mapped_column(String(32))
    area_code: Mapped[str] = mapped_column(String(32))
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[list[Any]] = mapped_column(JSON, default=list)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    created_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | acknowledged
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_cluster_warnings_state_last", "state", "last_at"),)


class ClusterMember(Base):
    """A ticket of a cluster warning, one row each: a cluster growing through a flood (thousands of calls about
    one burst main) adds a row per call instead of rewriting its whole member list, and two processes adding
    members at once cannot overwrite each other's."""

    __tablename__ = "cluster_warning_members"
    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("cluster_warnings.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    ticket_number: Mapped[str] = mapped_column(String(20), primary_key=True)

    __table_args__ = (Index("ix_cluster_warning_members_number", "ticket_number"),)


class ClusterKey(Base):
    """Every key a cluster warning is known by. Processes that saw a cluster's tickets in a different order may
    name it after a different first member; once matched by a shared member, the other name leads straight to
    the stored warning."""

    __tablename__ = "cluster_warning_keys"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("cluster_warnings.id", ondelete="CASCADE"), index=True)


class TriageSetting(Base):
    """Admin overrides of triage settings (e.g. ``auto_threshold``), one JSON value per key."""

    __tablename__ = "triage_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime]


class TriageJob(Base):
    """A ticket taken in with triage deferred (``MINSHENG_TRIAGE_MODE=deferred``), waiting for its analysis.

    Written in the intake's transaction and deleted in the triage's, so a ticket is neither forgotten nor
    triaged twice. ``request`` keeps what the submitter gave (without personal data) that the analysis reads:
    whether kind, urgency, category and area were given, the title, detail, address and coordinates.
    """

    __tablename__ = "triage_jobs"
    ticket_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
