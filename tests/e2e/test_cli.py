"""The `minsheng` command line end to end: schema, imports, users and tokens, demo seed, simulate, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from minsheng.cli.main import app
from minsheng.demo.seed import DEMO_PASSWORD
from minsheng.services.auth import authenticate, principal_from_token
from minsheng.services.uow import reading, writing
from minsheng.storage.audit_tables import AuditEntry
from minsheng.storage.db import Database, open_database
from minsheng.storage.models import Area, Ticket, TimelineEvent, Unit

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Models and attachments of these runs go to a throw-away data dir, not the checkout's var/."""
    path = tmp_path / "var"
    monkeypatch.setenv("MINSHENG_DATA_DIR", str(path))
    monkeypatch.delenv("MINSHENG_MODEL_DIR", raising=False)
    return path


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def database(url: str):  # type: ignore[no-untyped-def]
    db = open_database(url)
    yield db
    db.dispose()


def invoke(*args: str, url: str | None = None):  # type: ignore[no-untyped-def]
    argv = [*args, "--database-url", url] if url else list(args)
    return runner.invoke(app, argv)


def count(db: Database, model: type) -> int:
    with reading(db) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_upgrade_then_check(url: str) -> None:
    assert invoke("db", "check", url=url).exit_code == 1  # nothing migrated yet
    result = invoke("db", "upgrade", url=url)
    assert result.exit_code == 0, result.output
    assert invoke("db", "upgrade", url=url).exit_code == 0  # idempotent
    result = invoke("db", "check", url=url)
    assert result.exit_code == 0, result.output


def test_database_url_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "from-env.db"
    monkeypatch.setenv("MINSHENG_DATABASE_URL", f"sqlite:///{path}")
    assert invoke("db", "upgrade").exit_code == 0
    assert path.is_file()


def test_import_files(url: str, database: Database, tmp_path: Path) -> None:
    invoke("db", "upgrade", url=url)
    areas = tmp_path / "areas.csv"
    areas.write_text(
        "code,name,level,parent_code\n339901,鼓楼区,district,3399\n3399,民声市,city,\n", encoding="utf-8"
    )
    result = invoke("import", "areas", str(areas), url=url)
    assert result.exit_code == 0, result.output
    assert count(database, Area) == 2
    with database.read_sessions() as session:  # the audit log names the command line as the actor
        logged = session.execute(select(AuditEntry.entity, AuditEntry.action, AuditEntry.actor_name)).all()
    assert sorted(map(tuple, logged)) == [("area", "create", "cli"), ("area", "create", "cli")]

    units = tmp_path / "units.csv"
    units.write_text(
        "code,name,kind,area_code\ncgj,城管局,department,3399\nbad,坏,nonsense,\n", encoding="utf-8"
    )
    result = invoke("import", "units", str(units), url=url)
    assert result.exit_code == 1  # imported, with a refused row reported
    assert "nonsense" in result.output and count(database, Unit) == 1

    # --strict writes nothing when a row is refused.
    units.write_text("code,name,kind\nnew1,新单位,department\nbad,坏,nonsense\n", encoding="utf-8")
    assert invoke("import", "units", str(units), "--strict", url=url).exit_code == 1
    assert count(database, Unit) == 1


def test_taxonomy_import(url: str, shared_data: Path) -> None:
    invoke("db", "upgrade", url=url)
    result = invoke("import", "categories", str(shared_data / "taidi2020c" / "taxonomy_3level.csv"), url=url)
    assert result.exit_code == 0, result.output


def test_users_add_and_token(url: str, database: Database) -> None:
    invoke("db", "upgrade", url=url)
    result = invoke("users", "add", "ops", "--role", "admin", "--password", "a-long-password", url=url)
    assert result.exit_code == 0, result.output
    with writing(database) as s:
        assert authenticate(s, "ops", "a-long-password").role == "admin"

    result = invoke("users", "add", "gen", "--role", "operator", url=url)
    assert result.exit_code == 0 and "password:" in result.output

    result = invoke("users", "token", "ops", "--name", "sms-gateway", url=url)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    with reading(database) as s:
        principal = principal_from_token(s, token)
    assert principal is not None and principal.username == "ops"

    # Bad input: exit 2, one clear line, nothing created.
    for args, words in [
        (("users", "add", "ops", "--role", "admin"), "exists"),
        (("users", "add", "h1", "--role", "handler"), "unit"),
        (("users", "add", "w", "--role", "wizard"), "role"),
        (("users", "add", "u", "--role", "handler", "--unit", "nope"), "nope"),
        (("users", "add", "p", "--role", "admin", "--password", "short"), "8"),
        (("users", "token", "nobody", "--name", "x"), "nobody"),
    ]:
        result = invoke(*args, url=url)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output and "Traceback" not in result.output


def test_demo_seed_refuses_a_filled_database_unless_reset(url: str, database: Database) -> None:
    result = invoke("demo", "seed", "--tickets", "40", "--seed", "3", url=url)
    assert result.exit_code == 0, result.output
    assert "admin" in result.output and DEMO_PASSWORD in result.output
    assert count(database, Ticket) == 40

    result = invoke("demo", "seed", "--tickets", "10", url=url)
    assert result.exit_code == 2 and "--reset" in result.output
    assert count(database, Ticket) == 40

    result = invoke("demo", "seed", "--tickets", "10", "--seed", "3", "--reset", url=url)
    assert result.exit_code == 0, result.output
    assert count(database, Ticket) == 10

    # The live stream acts in the seeded city; --no-wait takes its steps without sleeping.
    events_before = count(database, TimelineEvent)
    result = invoke("simulate", "--tickets", "5", "--seed", "3", "--stream-seed", "9", "--no-wait", url=url)
    assert result.exit_code == 0, result.output
    assert count(database, Ticket) == 15
    assert count(database, TimelineEvent) > events_before + 5  # intake and more


def test_demo_seed_if_empty_leaves_a_filled_database(url: str, database: Database, data_dir: Path) -> None:
    # What `make demo` runs before every start: the first run seeds (and trains the model into the data dir) …
    result = invoke("demo", "seed", "--tickets", "60", "--seed", "3", "--if-empty", url=url)
    assert result.exit_code == 0, result.output
    assert count(database, Ticket) == 60
    assert "knowledge-base entries" in result.output and "deadlines" in result.output
    assert "no triage model" in result.output  # 60 tickets teach nothing; seeding goes on without
    # … the second leaves the city as it is, says so in one line and lets the server start.
    result = invoke("demo", "seed", "--tickets", "10", "--if-empty", url=url)
    assert result.exit_code == 0, result.output
    assert "already holds data" in result.output and len(result.output.strip().splitlines()) == 1
    assert count(database, Ticket) == 60

    result = invoke("demo", "seed", "--if-empty", "--reset", url=url)
    assert result.exit_code == 2 and "--reset" in result.output


def test_serve_banner_shows_addresses_and_demo_logins(
    url: str, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    from minsheng.cli.main import load_settings, print_welcome

    invoke("db", "upgrade", url=url)
    print_welcome(load_settings(url), "0.0.0.0", 8123)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8123/login" in out and "http://127.0.0.1:8123/screen" in out
    assert "/docs" in out and DEMO_PASSWORD not in out  # not the demo city: no logins

    assert invoke("demo", "seed", "--tickets", "5", "--no-model", url=url).exit_code == 0
    print_welcome(load_settings(url), "127.0.0.1", 8123)
    out = capsys.readouterr().out
    assert DEMO_PASSWORD in out and "operator1" in out and "dispatcher1" in out


def test_simulate_needs_the_demo_city(url: str) -> None:
    invoke("db", "upgrade", url=url)
    result = invoke("simulate", "--tickets", "1", "--no-wait", url=url)
    assert result.exit_code == 2 and "demo seed" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("db", "upgrade", "--database-url", "mysql://x@localhost/db"),
        ("db", "upgrade", "--database-url", "not a url"),
        ("import", "areas", "/no/such/file.csv"),
        ("serve", "--port", "0"),
    ],
)
def test_bad_input_exits_2(args: tuple[str, ...], url: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_missing_column_is_a_clean_error(url: str, database: Database, tmp_path: Path) -> None:
    invoke("db", "upgrade", url=url)
    path = tmp_path / "areas.csv"
    path.write_text("code,name\n3399,民声市\n", encoding="utf-8")
    result = invoke("import", "areas", str(path), url=url)
    assert result.exit_code == 2 and "level" in result.output
    assert count(database, Area) == 0


def test_the_real_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MINSHENG_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from minsheng.cli.main import main; main()",
            "import",
            "users",
            "missing.xlsx",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "missing.xlsx" in proc.stderr and "Traceback" not in proc.stderr


def test_worker_triages_deferred_intakes(
    url: str, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from minsheng.domain.roles import Actor, Role
    from minsheng.services import schemas as s
    from minsheng.services.tickets import TicketEngine, submit
    from minsheng.storage.triage_tables import TriageJob
    from tests.factories import small_city

    invoke("db", "upgrade", url=url)
    now = datetime.now(UTC)
    with writing(database) as session:
        small_city(session, now)
    engine = TicketEngine()
    engine.triage = lambda *_: None  # a hook is installed: intake defers to it
    engine.defer_triage = True
    actor = Actor(role=Role.OPERATOR, name="话务员")
    number, _, _ = submit(database, engine, actor, s.IntakeRequest(detail="小区门口路灯坏了一个星期"), now)
    assert count(database, TriageJob) == 1
    monkeypatch.setenv("MINSHENG_TRIAGE_MODE", "deferred")
    result = invoke("worker", "run", "--once", url=url)
    assert result.exit_code == 0, result.output
    assert "triaged 1, failed 0" in result.output
    assert count(database, TriageJob) == 0
    with reading(database) as session:
        t = session.scalar(select(Ticket).where(Ticket.number == number))
        assert t is not None and t.triage is not None and t.triage["decision"] == "queue"
