"""`minsheng analyze hotspots` end to end: one JSON object on standard output, an XLSX file that opens, and bad
input ending in exit code 2 without a traceback; and its top topics on the taidi2020c messages when present."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from minsheng.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT.parent / "shared" / "data" / "taidi2020c" / "messages_with_replies.csv"
runner = CliRunner()

ROWS = [
    ("m1", "明月小区旁边的机械厂夜间噪音扰民", "机械厂每天晚上开机到凌晨，冲床噪音吵得睡不着", "2026/5/1 22:10:00", "u1"),
    ("m2", "投诉明月小区附近机械厂半夜噪音", "明月小区居民反映，机械厂半夜生产，噪音太大", "2026/5/2 23:40:00", "u2"),
    ("m3", "明月小区居民投诉机械厂夜间生产噪音", "机械厂夜里机器轰鸣，严重影响休息", "2026-05-03 21:00:00", "u3"),
    ("m4", "机械厂夜间噪音影响明月小区居民休息", "晚上机械厂冲床声音很大，希望环保部门来测噪音", "2026/5/4 0:30:00", "u4"),
    ("k1", "K58路公交停运，出行困难", "K58路公交车从本月起停运了，上班很不方便，希望恢复", "2026/5/2 8:00:00", "u5"),
    ("k2", "希望恢复K58路公交", "K58路停运后附近没有公交车到地铁站，请交通部门恢复线路", "2026/5/3 9:00:00", "u6"),
    ("k3", "反映K58路公交线路取消的问题", "K58路公交突然取消，老人出行很困难，请恢复K58路", "2026/5/5 7:30:00", "u7"),
    ("o1", "人民路路灯坏了", "人民路的路灯坏了一个月没人修", "2026/5/1 9:00:00", "u8"),
    ("o2", "咨询医保报销材料", "请问异地就医报销需要什么材料", "2026/5/2 10:00:00", "u9"),
    ("o3", "菜市场占道经营", "菜市场门口占道经营很乱", "2026/5/3 11:00:00", "u10"),
]  # fmt: skip


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "requests.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["编号", "标题", "内容", "时间", "用户"])
        writer.writerows(ROWS)
    return path


def _args(data: Path, *more: str) -> list[str]:
    return [
        "analyze",
        "hotspots",
        "--data",
        str(data),
        "--id-column",
        "编号",
        "--text-column",
        "标题",
        "--text-column",
        "内容",
        "--time-column",
        "时间",
        *more,
    ]


def test_json_on_standard_output_is_one_object(data: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", "from minsheng.cli.main import main; main()", *_args(data, "--top", "5")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)  # the whole of standard output is the one object
    assert list(body) == ["hotspots"]
    topics = body["hotspots"]
    assert [t["rank"] for t in topics] == list(range(1, len(topics) + 1))
    by_ids = {frozenset(t["ticket_ids"]): t for t in topics}
    noise = by_ids[frozenset({"m1", "m2", "m3", "m4"})]
    assert "明月小区" in noise["place"] and noise["count"] == 4 and noise["first"] == "2026-05-01T22:10:00"
    bus = by_ids[frozenset({"k1", "k2", "k3"})]
    assert bus["place"] == "K58路" and bus["last"] == "2026-05-05T07:30:00"
    assert noise["heat"] > bus["heat"] and noise["rank"] < bus["rank"]
    assert set(noise) == {"rank", "heat", "place", "crowd", "summary", "ticket_ids", "first", "last", "count"}
    assert "hot topics" in proc.stderr  # the summary line goes to standard error


def test_xlsx_file_opens(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "hot.xlsx"
    result = runner.invoke(
        app, _args(data, "--citizen-column", "用户", "--format", "xlsx", "--out", str(out))
    )
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(out).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("排名", "热度", "地点", "人群", "概述", "件数", "首次", "最近", "工单编号")
    assert [r[0] for r in rows[1:]] == [1, 2]
    assert rows[1][5] == 4 and set(str(rows[1][8]).split(", ")) == {"m1", "m2", "m3", "m4"}


def test_json_to_a_file(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "hot.json"
    result = runner.invoke(app, _args(data, "--out", str(out)))
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text(encoding="utf-8"))["hotspots"]) == 2


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (["--text-column", "正文"], "正文"),
        (["--citizen-column", "手机"], "手机"),
        (["--format", "xlsx"], "--out"),
    ],
)
def test_bad_input_exits_2(data: Path, more: list[str], message: str) -> None:
    result = runner.invoke(app, _args(data, *more))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_missing_file_and_unreadable_times_exit_2(data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, _args(tmp_path / "nope.csv"))
    assert result.exit_code == 2 and "no such file" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(data.read_text(encoding="utf-8").replace("2026/5/3 11:00:00", "上周三"), encoding="utf-8")
    result = runner.invoke(app, _args(bad))
    assert result.exit_code == 2 and "o3" in result.output and "上周三" in result.output


@pytest.mark.skipif(not MESSAGES.is_file(), reason=f"shared data absent at {MESSAGES}")
def test_top_topics_of_the_taidi2020c_messages(tmp_path: Path) -> None:
    """The real messages: with the user column, the top ten are each several citizens about one place."""
    out = tmp_path / "top.json"
    args = [
        "analyze",
        "hotspots",
        "--data",
        str(MESSAGES),
        "--id-column",
        "id",
        "--text-column",
        "title",
        "--text-column",
        "detail",
        "--time-column",
        "time",
        "--citizen-column",
        "user",
        "--top",
        "10",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    topics = json.loads(out.read_text(encoding="utf-8"))["hotspots"]
    assert len(topics) == 10
    users = {}
    with MESSAGES.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            users[row["id"]] = row["user"]
    for t in topics:
        assert t["place"] and len({users[i] for i in t["ticket_ids"]}) >= 2
    places = " ".join(t["place"] for t in topics)
    assert "佳园星城" in places and "204路" in places
