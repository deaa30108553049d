"""The periodic report on both stores: `minsheng report` writes XLSX and PDF (the PDF's text, read back with
pypdf, holds the Chinese unit names), and the worker's job makes the report of the month on the first day of
the next one exactly once, even when it runs twice or when two workers race (PostgreSQL)."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from minsheng.cli.main import app
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Rating
from minsheng.domain.transitions import AssignmentAction
from minsheng.measures.periods import Period
from minsheng.services import schemas as s
from minsheng.services.report_jobs import KIND, ReportJob, due_periods, produce, report_path
from minsheng.services.reports import build_report
from minsheng.services.tickets import TicketEngine
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Ticket, User
from minsheng.storage.timelimit_tables import Notification
from tests.factories import small_city

runner = CliRunner()
# 10:00 on 12 November 2026 in Shanghai
NOVEMBER = datetime(2026, 11, 12, 2, 0, tzinfo=UTC)


def _actor(db: Database, username: str) -> Actor:
    with reading(db) as session:
        u = session.scalars(select(User).where(User.username == username)).one()
        return Actor(Role(u.role), user_id=u.id, unit_id=u.unit_id, name=u.display_name)


def _november(db: Database) -> None:
    """The small city and two tickets of November: one closed by 市城管局 and praised, one 市住建局 returns."""
    now = NOVEMBER
    engine = TicketEngine()
    with writing(db) as session:
        small_city(session, now)
    for detail, unit in (("幸福路3号路灯坏了，电话13912345678", "CGJ"), ("和平街道小区漏水", "ZJJ")):
        with writing(db) as session:
            req = s.IntakeRequest(
                detail=detail, category_code="010101", area_code="C0101", public_consent=True
            )
            t, _, _ = engine.intake(session, _actor(db, "operator1"), req, now)
            number = t.number
        with writing(db) as session:
            engine.dispatch(session, _actor(db, "dispatcher1"), number, s.Dispatch(lead_unit=unit), now)
        handler = _actor(db, f"h_{unit.lower()}")
        with writing(db) as session:
            a_id = session.scalar(
                select(Assignment.id)
                .join(Ticket)
                .where(Ticket.number == number, Assignment.unit_id == handler.unit_id)
            )
        steps: list[tuple[AssignmentAction, s.Checked]]
        if unit == "ZJJ":
            steps = [(AssignmentAction.RETURN, s.WithReason(reason="不属于本局职责"))]
        else:
            steps = [
                (AssignmentAction.SIGN, s.WithNote()),
                (AssignmentAction.FEEDBACK, s.Feedback(text="已更换")),
                (AssignmentAction.REQUEST_CLOSE, s.RequestClose(summary="路灯已修复，谢谢反映")),
            ]
        for action, params in steps:
            now += timedelta(hours=1)
            with writing(db) as session:
                engine.assignment_step(session, handler, a_id, action, params, now)
        if unit == "CGJ":
            with writing(db) as session:
                engine.review(session, _actor(db, "supervisor1"), number, True, "好", now)
            with writing(db) as session:
                engine.follow_up(
                    session, _actor(db, "followup1"), number, s.FollowUp(rating=Rating.SATISFIED), now
                )


@pytest.fixture
def november(db: Database) -> Database:
    _november(db)
    return db


def test_report_figures_and_the_cli_in_xlsx_and_pdf(november: Database, db_url: str, tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    with reading(november) as session:
        r = build_report(session, Period.parse("2026-11"), NOVEMBER, Settings())
    assert r.title.endswith("2026年11月月度报告")
    overview = {f.label: f for sec in r.sections for f in sec.figures}
    assert overview["受理量"].value == 2
    returned = next(t for sec in r.sections for t in sec.tables if t.title == "退回工单")
    assert len(returned.rows) == 1
    cases = [c for sec in r.sections for c in sec.cases]
    assert cases and all("13912345678" not in p for c in cases for _, p in c.passages)
    xlsx = tmp_path / "r.xlsx"
    result = runner.invoke(
        app,
        ["report", "--period", "2026-11", "--format", "xlsx", "--out", str(xlsx), "--database-url", db_url],
    )
    assert result.exit_code == 0, result.output
    wb = load_workbook(io.BytesIO(xlsx.read_bytes()))
    assert "概况" in wb.sheetnames and "受理渠道" in wb.sheetnames
    text = "\n".join(str(c.value) for ws in wb for row in ws.iter_rows() for c in row if c.value is not None)
    assert "市城管局" in text and "市住建局" in text
    if db_url.startswith("sqlite"):  # the PDF once: the same document on both stores
        pdf = tmp_path / "r.pdf"
        result = runner.invoke(
            app,
            ["report", "--period", "2026-11", "--format", "pdf", "--out", str(pdf), "--database-url", db_url],
        )
        assert result.exit_code == 0, result.output
        reader = pypdf.PdfReader(str(pdf))
        pdf_text = "".join(p.extract_text() for p in reader.pages)
        for name in ("市城管局", "民声市", "月度报告", "受理渠道", "典型案例"):
            assert name in pdf_text, name
        assert "13912345678" not in pdf_text
    bad = runner.invoke(app, ["report", "--period", "2026-13", "--database-url", db_url])
    assert bad.exit_code == 2 and "2026-13" in bad.output


def _reports(db: Database) -> list[tuple[int | None, str]]:
    with reading(db) as session:
        return list(
            session.execute(
                select(Notification.user_id, Notification.source).where(Notification.kind == KIND)
            )
            .tuples()
            .all()
        )


def test_the_worker_makes_the_report_once_on_the_first_day(november: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    # 08:00 on 1 December in Shanghai
    clock = FixedClock(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    built: list[str] = []

    def build(session, period, now, st):  # type: ignore[no-untyped-def]
        built.append(str(period))
        return build_report(session, period, now, st)

    job = ReportJob(november, clock, settings, (), build=build)
    assert job.run() == []  # a process looks first five minutes after it started
    clock.advance(timedelta(minutes=5))
    outcomes = job.run()
    assert [(o.period, o.made) for o in outcomes] == [("2026-11", True)]
    assert report_path(settings, Period.parse("2026-11"), "xlsx").is_file()
    # The PDF is rendered in a child process (the worker may share the web server's process).
    pdf = report_path(settings, Period.parse("2026-11"), "pdf")
    assert outcomes[0].note == "" and pdf.read_bytes().startswith(b"%PDF")
    rows = _reports(november)
    with reading(november) as session:
        leaders = session.scalar(select(func.count()).select_from(User).where(User.role == "leader")) or 0
    assert len(rows) == 1 + leaders and {src for _, src in rows} == {"report:2026-11"}
    # the same worker ten minutes later, and a second worker at once: nothing more
    assert job.run() == []
    clock.advance(timedelta(minutes=11))
    assert [o.made for o in job.run()] == [False]
    other = ReportJob(november, clock, settings, (), build=build, first_look_after=timedelta(0))
    assert [o.made for o in other.run()] == [False]
    assert built == ["2026-11"] and len(_reports(november)) == 1 + leaders
    # on the 15th nothing is due
    assert due_periods(datetime(2026, 12, 15).date()) == []
    assert [str(p) for p in due_periods(datetime(2027, 1, 1).date())] == ["2026-12", "2026-Q4", "2026"]


def test_two_workers_racing_announce_once(november: Database, tmp_path: Path, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer: the race is PostgreSQL's")
    settings = Settings(data_dir=tmp_path / "data")
    now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    period = Period.parse("2026-11")
    gate = threading.Barrier(2)
    results: list[bool] = []

    def build(session, p, n, st):  # type: ignore[no-untyped-def]
        report = build_report(session, p, n, st)
        gate.wait(timeout=30)  # both have looked and found nothing before either announces
        return report

    def worker() -> None:
        results.append(produce(november, period, now, settings, (), build).made)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [False, True]
    assert len({src for _, src in _reports(november)}) == 1
