"""`minsheng import tickets` end to end on both stores: a ready-made mapping by name with --limit, the counts
printed, the refused rows written to --errors, exit codes (0 all imported, 1 some refused, 2 bad input), and a
re-run that makes nothing new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from minsheng.cli.main import app
from minsheng.services.uow import reading
from minsheng.storage.db import open_database
from minsheng.storage.models import Ticket

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var"
    monkeypatch.setenv("MINSHENG_DATA_DIR", str(path))
    monkeypatch.delenv("MINSHENG_MODEL_DIR", raising=False)
    return path


def invoke(url: str, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["import", "tickets", *args, "--database-url", url])


def tickets(url: str) -> int:
    db = open_database(url)
    try:
        with reading(db) as s:
            return s.scalar(select(func.count()).select_from(Ticket)) or 0
    finally:
        db.dispose()


def test_import_tickets_command(db_url: str, shared_data: Path, tmp_path: Path) -> None:
    board = shared_data / "taidi2020c" / "messages_with_replies.csv"
    result = invoke(db_url, str(board), "--mapping", "message_board", "--limit", "40")
    assert result.exit_code == 0, result.output
    assert "read 40 rows, imported 40, already imported 0, refused 0" in " ".join(result.output.split())
    assert tickets(db_url) == 40
    result = invoke(db_url, str(board), "--mapping", "message_board", "--limit", "40")
    assert result.exit_code == 0 and "imported 0, already imported 40" in " ".join(result.output.split())

    # A file of the old system with a bad row in the middle: exit 1, the others imported, the report written.
    data = tmp_path / "bad.csv"
    lines = ["id,user,title,time,detail,reply,reply_time"]
    lines += [f"x{i},u,标题{i},2019/4/25 9:32:09,内容{i},答复,2019/5/10 14:56:53" for i in range(3)]
    lines.insert(2, "x9,u,坏行,明天上午,内容,答复,2019/5/10 14:56:53")
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = tmp_path / "errors.json"
    result = invoke(db_url, str(data), "--mapping", "message_board", "--errors", str(report))
    assert result.exit_code == 1, result.output
    assert "read 4 rows, imported 3, already imported 0, refused 1" in " ".join(result.output.split())
    errors = json.loads(report.read_text(encoding="utf-8"))
    assert errors["errors"] == [
        {"row": 3, "source_id": "x9", "error": "created time: '明天上午' is not a time this mapping reads"}
    ]
    assert tickets(db_url) == 43

    # Bad input: exit 2 with a message, nothing written.
    assert invoke(db_url, str(tmp_path / "none.csv"), "--mapping", "message_board").exit_code == 2
    result = invoke(db_url, str(data), "--mapping", "no-such-mapping")
    assert result.exit_code == 2 and "mapping not found" in result.output
    result = invoke(
        db_url, str(shared_data / "nyc311" / "nyc311_2013-12-25_agencies.csv"), "--mapping", "nyc311"
    )
    assert result.exit_code == 2 and "pass a default time" in " ".join(result.output.split())
    result = invoke(
        db_url,
        str(shared_data / "nyc311" / "nyc311_2013-12-25_agencies.csv"),
        "--mapping",
        "nyc311",
        "--default-time",
        "2013-12-25T12:00",
        "--limit",
        "30",
    )
    assert result.exit_code == 0, result.output
    assert tickets(db_url) == 73
