"""The worker's periodic reports: on the first day of a month it writes the report of the month before (and of
the quarter and the year before when those end too) as XLSX and PDF under `<data dir>/reports/`, and tells the
leaders (in-app inbox, and the group robots / SMS where configured, through the outbox).

Once per period, however many workers run: the report counts as made when its notifications exist (source
``report:<period>``). Each worker first looks (cheap), builds the files if they are missing (outside any
transaction: it is the slow part), then announces in one write transaction that holds a lock on the period's
name (PostgreSQL: an advisory lock; SQLite: its single writer) and looks again: the second worker finds the
announcement and leaves. Two workers that raced wrote the same files (atomically, by rename), so nothing is
half-written and nothing is announced twice.

A worker that was down on the first day catches up during the next `CATCH_UP_DAYS` days.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.config import Settings
from minsheng.domain.clock import Clock
from minsheng.domain.roles import Role
from minsheng.measures.periods import Period, local_day
from minsheng.notify.channels import DINGTALK, SMS, WECOM
from minsheng.services.notifications import add_inbox, enqueue
from minsheng.services.report_render import PdfUnavailable, Report, report_pdf_in_child, report_xlsx
from minsheng.storage import dialect
from minsheng.storage.db import Database
from minsheng.storage.models import User
from minsheng.storage.timelimit_tables import Notification

log = logging.getLogger("minsheng.reports")

KIND = "report"
CATCH_UP_DAYS = 3
CHECK_EVERY = timedelta(minutes=10)
# A process looks first this long after it started: a server's first minutes are its busiest, and short-lived
# processes (tests, one-off commands, a restart loop) never build a report. Building one reads a period of facts
# and writes the XLSX in this process (the PDF is drawn in a child): see docs/REPORTS.md.
FIRST_LOOK_AFTER = timedelta(minutes=5)
Builder = Callable[[Session, Period, datetime, Settings], Report]


def source_key(period: Period) -> str:
    return f"{KIND}:{period}"


def due_periods(today: date, catch_up_days: int = CATCH_UP_DAYS) -> list[Period]:
    """The periods whose report is due on `today` (local): the month before during the first days of a month,
    and the quarter and the year before when a quarter or a year began."""
    if today.day > catch_up_days:
        return []
    this_month = Period.month(today.year, today.month)
    out = [this_month.previous()]
    if today.month in (1, 4, 7, 10):
        out.append(Period.containing(today, "quarter").previous())
    if today.month == 1:
        out.append(Period.year(today.year - 1))
    return out


def report_dir(settings: Settings) -> Path:
    return settings.data_dir / "reports"


def report_path(settings: Settings, period: Period, fmt: str) -> Path:
    return report_dir(settings) / f"{period}.{fmt}"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def announced(session: Session, period: Period) -> bool:
    key = source_key(period)
    return (
        session.scalar(
            select(Notification.id).where(Notification.kind == KIND, Notification.source == key).limit(1)
        )
        is not None
    )


@dataclass
class Outcome:
    period: str
    made: bool
    files: list[str]
    note: str = ""


def produce(
    db: Database,
    period: Period,
    now: datetime,
    settings: Settings,
    channels: Collection[str] = (),
    build: Builder | None = None,
) -> Outcome:
    """Make and announce the report of `period` unless that was done already (by this or another worker)."""
    with db.read_sessions() as session, session.begin():
        if announced(session, period):
            return Outcome(str(period), False, [], "already made")
    make = build or _default_builder()
    with db.read_sessions() as session, session.begin():
        report = make(session, period, now, settings)
    files = [report_path(settings, period, "xlsx")]
    _write_atomically(files[0], report_xlsx(report))
    note = ""
    try:
        pdf = report_pdf_in_child(report)
        files.append(report_path(settings, period, "pdf"))
        _write_atomically(files[1], pdf)
    except PdfUnavailable as e:  # the XLSX still goes out; the PDF can be made from the page later
        note = e.message
        log.warning("report %s: %s", period, e.message)
    with db.write_sessions() as session, session.begin():
        dialect.advisory_lock(session, source_key(period))
        if announced(session, period):
            return Outcome(str(period), False, [str(f) for f in files], "announced by another worker")
        _announce(session, report, period, now, channels, pdf_ok=not note)
    return Outcome(str(period), True, [str(f) for f in files], note)


def _default_builder() -> Builder:
    from minsheng.services.reports import build_report

    return build_report


def _announce(
    session: Session,
    report: Report,
    period: Period,
    now: datetime,
    channels: Collection[str],
    *,
    pdf_ok: bool,
) -> None:
    key = source_key(period)
    fmt = "pdf" if pdf_ok else "xlsx"
    link = f"/stats/report?period={period}&format={fmt}"
    title = f"{report.title}已生成"
    headline = "；".join(report.headline[:3]) if report.headline else ""
    text = f"{report.title}已生成{('：' + headline) if headline else ''}。下载：{link}"
    common: dict[str, Any] = {"kind": KIND, "title": title, "text": text, "now": now, "source": key}
    leaders = list(
        session.execute(
            select(User.id, User.phone).where(User.role == Role.LEADER.value, User.active.is_(True))
        ).tuples()
    )
    # The record that the report was made, whoever reads it: no inbox lists a row with neither user nor unit.
    add_inbox(session, **common)
    for user_id, phone in leaders:
        add_inbox(session, user_id=user_id, **common)
        if SMS in channels and phone:
            enqueue(session, channel=SMS, recipient=phone, **common)
    for robot in (WECOM, DINGTALK):
        if robot in channels:
            enqueue(session, channel=robot, **common)


def run_due(
    db: Database,
    now: datetime,
    settings: Settings,
    channels: Collection[str] = (),
    build: Builder | None = None,
) -> list[Outcome]:
    """Every report due today (local), each made at most once; a failure is logged and retried later."""
    out = []
    for period in due_periods(local_day(now)):
        try:
            out.append(produce(db, period, now, settings, channels, build))
        except Exception:  # one broken report must not stop the worker or the other reports
            log.exception("report %s failed", period)
    for o in out:
        if o.made:
            log.info("report %s made: %s %s", o.period, ", ".join(o.files), o.note)
    return out


class ReportJob:
    """Called by the worker loop after each pass (`run_loop(on_pass=...)`); looks every `CHECK_EVERY`."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        channels: Collection[str] = (),
        *,
        every: timedelta = CHECK_EVERY,
        first_look_after: timedelta = FIRST_LOOK_AFTER,
        build: Builder | None = None,
    ) -> None:
        self.db, self.clock, self.settings = db, clock, settings
        self.channels = frozenset(channels)
        self.every = every
        self.build = build
        self._next: datetime | None = clock.now() + first_look_after

    def __call__(self, _stats: Any = None) -> None:
        self.run()

    def run(self) -> list[Outcome]:
        """Look (at most every `every`) and make what is due; what was done, for tests and logs."""
        now = self.clock.now()
        if self._next is not None and now < self._next:
            return []
        self._next = now + self.every
        return run_due(self.db, now, self.settings, self.channels, self.build)
