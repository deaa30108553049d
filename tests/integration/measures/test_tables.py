"""Measure tables, rankings and the tickets behind a figure, from facts the engine kept (both stores): periods
with the previous one and last year's, areas and units rolled up, too few tickets marked, every figure's base
and numerator listed; and `minsheng measures rebuild` / `check` on the same database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from minsheng.cli.main import app
from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Rating, TransferTarget
from minsheng.services import measures as m
from minsheng.services import schemas as s
from minsheng.services.errors import Invalid, NotFound
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket
from tests.factories import small_city
from tests.integration.timelimits.helpers import Harness

NOV = m.Period.parse("2026-11")
FEW = m.MeasureSettings(min_tickets=2)
DESK = Actor(Role.OPERATOR, name="话务员")


def _handle(h: Harness, unit: str, area: str, rating: Rating | None, close: bool = True) -> str:
    number = h.intake_and_dispatch(lead=unit, area_code=area, category_code="010101")
    h.clock.advance(timedelta(minutes=3))
    h.step(number, unit, "sign")
    if close:
        h.step(number, unit, "feedback", s.Feedback(text="已处理"))
        h.step(number, unit, "request_close", s.RequestClose(summary="已办结"))
        h.ticket_step("review", number, True, None)
        if rating is not None:
            h.ticket_step("follow_up", number, s.FollowUp(rating=rating), role=Role.FOLLOWUP)
    return number


@pytest.fixture
def city(db: Database) -> Harness:
    clock = FixedClock(datetime(2025, 11, 10, 2, 0, tzinfo=UTC))
    with writing(db) as session:
        small_city(session, clock.now())
    h = Harness.build(db, clock, TimeLimitConfig.from_preset("chengdu"))
    _handle(h, "CGJ", "C0101", Rating.SATISFIED)  # November last year
    h.clock.set(datetime(2026, 10, 12, 2, 0, tzinfo=UTC))
    _handle(h, "CGJ", "C0101", Rating.SATISFIED)  # October: the previous month
    h.clock.set(datetime(2026, 11, 9, 2, 0, tzinfo=UTC))
    _handle(h, "CGJ", "C0101", Rating.SATISFIED)
    _handle(h, "CGJ", "C0101", Rating.DISSATISFIED)
    _handle(h, "CGJ", "C0101", None, close=False)
    _handle(h, "XFL", "C0101", Rating.BASICALLY_SATISFIED)  # a street office under the district office DC
    _handle(h, "ZJJ", "C0201", None)
    with writing(db) as session:
        t, _, _ = h.engine.intake(
            session, DESK, s.IntakeRequest(detail="有人打架", area_code="C0201"), h.clock.now()
        )
        h.engine.transfer(session, DESK, t.number, s.Transfer(target=TransferTarget.POLICE), h.clock.now())
    return h


def _tables_periods_rollups_and_rankings(city: Harness) -> None:
    with reading(city.db) as session:
        table = m.measure_table(session, NOV, m.Scope(), None, FEW)
        total = table.total
        assert (
            total.values["volume"] == 6 and total.previous["volume"] == 1 and total.last_year["volume"] == 1
        )
        assert total.values["completion_rate"] == pytest.approx(4 / 5)  # the transfer leaves the base
        assert total.values["satisfaction_rate"] == pytest.approx(2 / 3)  # 满意 and 基本满意 of three ratings
        assert total.values["transfer_count"] == 1 and total.previous["completion_rate"] == 1.0

        by_area = {r.code: r for r in m.measure_table(session, NOV, m.Scope(), "area", FEW).rows}
        assert by_area["C01"].counts["tickets"] == 4 and by_area["C02"].counts["tickets"] == 2
        streets = m.measure_table(session, NOV, m.Scope(area_code="C01"), "area", FEW)
        assert [(r.code, r.counts.get("tickets")) for r in streets.rows] == [("C0101", 4)]

        by_unit = {r.code: r for r in m.measure_table(session, NOV, m.Scope(), "unit", FEW).rows}
        assert by_unit["DC"].counts["tickets"] == 1  # XFL's ticket rolled up into its district office
        assert by_unit["CGJ"].counts["tickets"] == 3 and by_unit["CGJ"].values[
            "completion_rate"
        ] == pytest.approx(2 / 3)
        assert by_unit["ZJJ"].few and not by_unit["CGJ"].few

        weeks = m.measure_table(session, NOV, m.Scope(unit_code="CGJ"), "week", FEW).rows
        assert sum(r.counts.get("tickets", 0) for r in weeks) == 3
        assert [r.key for r in weeks][:2] == ["week:2026-11-01..2026-11-01", "week:2026-W45"]
        channels = {
            r.code: r.counts.get("tickets", 0)
            for r in m.measure_table(session, NOV, m.Scope(), "channel", FEW).rows
        }
        assert channels["phone"] == 6

        districts = m.ranking(session, NOV, "district", FEW, "completion_rate")
        assert [(r.code, r.rank, r.few) for r in districts] == [("C01", 1, False), ("C02", None, True)]
        depts = m.ranking(session, NOV, "department", FEW)
        assert depts[0].code == "CGJ" and depts[0].rank == 1
        assert all(r.rank is None for r in depts if r.few) and any(r.code == "ZJJ" and r.few for r in depts)
        with pytest.raises(Invalid):
            m.measure_table(session, NOV, m.Scope(), "colour", FEW)
        with pytest.raises(Invalid):
            m.ranking(session, NOV, "galaxy", FEW)
        with pytest.raises(NotFound):
            m.measure_table(session, NOV, m.Scope(area_code="NOPE"), None, FEW)


def _the_tickets_behind_each_figure_match_it(city: Harness) -> None:
    with reading(city.db) as session:
        table = m.measure_table(session, NOV, m.Scope(), "unit", FEW)
        for row in [table.total, *table.rows]:
            key = None if row.key == "total" else row.key
            values = m.MeasureSettings()
            from minsheng.measures.values import evaluate

            ev = evaluate(row.counts, values)
            for code in ("completion_rate", "satisfaction_rate", "reopen_rate", "volume", "transfer_count"):
                base = list(session.scalars(m.tickets_behind(session, NOV, m.Scope(), code, key)))
                num = list(
                    session.scalars(m.tickets_behind(session, NOV, m.Scope(), code, key, part="numerator"))
                )
                rest = list(
                    session.scalars(m.tickets_behind(session, NOV, m.Scope(), code, key, part="rest"))
                )
                expected_base = (
                    ev[code].denominator if ev[code].denominator is not None else row.counts.get("tickets", 0)
                )
                assert len(base) == expected_base, (row.key, code)
                assert len(num) == ev[code].numerator, (row.key, code)
                assert sorted(num + rest) == sorted(base)
        open_ids = set(
            session.scalars(
                m.tickets_behind(session, NOV, m.Scope(unit_code="CGJ"), "completion_rate", part="rest")
            )
        )
        states = set(session.scalars(select(Ticket.state).where(Ticket.id.in_(open_ids))))
        assert len(open_ids) == 1 and states == {"in_progress"}
        assert (
            len(list(session.scalars(m.tickets_behind(session, NOV, m.Scope(), "volume", "day:2026-11-09"))))
            == 6
        )
        for code in [x.code for x in m.MEASURES]:  # every measure can list its tickets
            session.scalars(
                m.tickets_behind(session, NOV, m.Scope(area_code="C01"), code, "category:01", part="rest")
            ).all()
        with pytest.raises(Invalid):
            m.tickets_behind(session, NOV, m.Scope(), "volume", "day:2026-12-01")


def _the_cli_rebuilds_and_checks(city: Harness, db_url: str) -> None:
    runner = CliRunner()
    with reading(city.db) as session:
        kept = m.facts_of(session)
    result = runner.invoke(app, ["measures", "rebuild", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "8 tickets" in result.output
    result = runner.invoke(app, ["measures", "rebuild", "--since", "2026-11-01", "--database-url", db_url])
    assert result.exit_code == 0 and "6 tickets" in result.output
    with reading(city.db) as session:
        assert m.facts_of(session) == kept
    assert runner.invoke(app, ["measures", "check", "--database-url", db_url]).exit_code == 0
    assert (
        runner.invoke(
            app, ["measures", "rebuild", "--since", "2026-11-31", "--database-url", db_url]
        ).exit_code
        == 2
    )


def _the_big_screen_shows_the_service_figures(city: Harness) -> None:
    from zoneinfo import ZoneInfo

    from minsheng.services.screen import figures

    now = city.clock.now() + timedelta(days=2)
    with reading(city.db) as session:
        data = figures(session, now, ZoneInfo("Asia/Shanghai"), settings=FEW)
        week = m.Period.last_days(m.Period.parse("2026-11-11").start, 7)
        total = m.measure_table(session, week, m.Scope(), None, FEW).total
    assert data["period"] == {"key": "2026-11-05..2026-11-11", "label": week.label}
    assert data["window_total"] == 6
    assert data["rates"]["completion_rate"] == round(100 * (total.values["completion_rate"] or 0), 1) == 80.0
    cgj = next(r for r in data["ranking"] if r["unit"] == "市城管局")
    assert (cgj["total"], cgj["closed"], cgj["rate"]) == (3, 2, 66.7)


def test_tables_rankings_tickets_behind_and_the_cli(city: Harness, db_url: str) -> None:
    # One city for the four (building it is most of the time).
    _tables_periods_rollups_and_rankings(city)
    _the_tickets_behind_each_figure_match_it(city)
    _the_big_screen_shows_the_service_figures(city)
    _the_cli_rebuilds_and_checks(city, db_url)
