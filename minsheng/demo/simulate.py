"""A live stream of new demo tickets walked through the loop (`minsheng simulate`), for demos and load.

New requests are generated from the same texts and scripts as the demo history (:mod:`minsheng.demo.history`),
starting now, and replayed through the ticket engine in time order. Script times are compressed by ``speed``
(simulated seconds per real second): with ``speed=600`` a ticket that takes two days to close closes in under
five minutes. Each step is recorded at the real time it happens, so the consoles and the big screen see a
live city. ``wait=False`` takes the steps as fast as possible (tests, load), still recorded at the compressed
times they would have had.

The database must hold the demo city of the same seed (`minsheng demo seed`); the stream seed only varies the
requests. Every step is its own short transaction, so the API and the worker keep working alongside.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from minsheng.demo.city import HOTLINE_UNIT, generate_city
from minsheng.demo.history import generate_history
from minsheng.demo.replay import Actors, ReplayEngine, Replayer
from minsheng.services.errors import ServiceError
from minsheng.services.tickets import TicketEngine
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Unit

# Script time after the last request during which its loop may still run (most tickets close within two weeks).
TAIL = timedelta(days=14)


class CityMissing(ServiceError):
    """The database does not hold the demo city the simulation acts in."""


@dataclass
class SimulationReport:
    tickets: int = 0
    steps: int = 0
    skipped: int = 0  # steps the engine refused (e.g. someone acted on the ticket by hand meanwhile)
    seconds: float = 0.0
    numbers: list[str] = field(default_factory=list)


def run_simulation(
    db: Database,
    *,
    n_tickets: int,
    speed: float = 600.0,
    wait: bool = True,
    city_seed: int = 2026,
    seed: int = 1,
    engine: TicketEngine | None = None,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SimulationReport:
    """Stream ``n_tickets`` new tickets and walk each through its script, compressed by ``speed``."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    clock = clock or (lambda: datetime.now(UTC))
    started = time.perf_counter()
    city = generate_city(city_seed)
    with reading(db) as session:
        if session.scalar(select(Unit.id).where(Unit.code == HOTLINE_UNIT)) is None:
            raise CityMissing(
                f"no demo city in this database: run `minsheng demo seed --seed {city_seed}` first"
            )
        actors = Actors(session)

    t0 = clock()
    # Requests arrive at a busy hotline's pace (one every few minutes of script time) over a window W. The
    # generator cuts steps at the end of its window, so it is asked for a window with a tail of TAIL after W,
    # and only the first n_tickets (those created inside W) are kept: they can run to the end of their loop.
    window = timedelta(minutes=6) * n_tickets
    scripts = list(
        generate_history(
            city, math.ceil(n_tickets * (window + TAIL) / window), start=t0, end=t0 + window + TAIL, seed=seed
        )
    )[:n_tickets]
    replayer = Replayer(ReplayEngine(engine), actors, live=True)
    report = SimulationReport()
    total = len(scripts) + sum(len(s.steps) for s in scripts)

    def real(script_time: datetime) -> datetime:
        """Script time s happens at real time t0 + (s - t0) / speed."""
        return t0 + (script_time - t0) / speed

    def when(script_time: datetime) -> datetime:
        at = real(script_time)
        if not wait:
            return at
        delay = (at - clock()).total_seconds()
        if delay > 0:
            sleep(delay)
        return max(at, clock())

    i = 0
    while i < len(scripts) or replayer.pending:
        next_intake = scripts[i].created_at if i < len(scripts) else None
        next_step = replayer.next_at()
        if next_step is not None and (next_intake is None or next_step < next_intake):
            at = when(next_step)
            with writing(db) as session:
                taken = replayer.take_next(session, at)
            report.steps += taken
            report.skipped += 1 - taken
        else:
            assert next_intake is not None
            at = when(next_intake)
            with writing(db) as session:
                report.numbers.append(replayer.intake(session, scripts[i], at).number)
            i += 1
            report.tickets += 1
        if progress:
            progress(report.tickets + report.steps + report.skipped, total)
    report.seconds = time.perf_counter() - started
    return report
