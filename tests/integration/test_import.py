"""Importing the organisation from CSV and XLSX (SQLite and PostgreSQL): order, upserts, bad rows, cycles."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from minsheng.services.auth import authenticate
from minsheng.services.importing import (
    ImportFileError,
    import_areas,
    import_categories,
    import_units,
    import_users,
)
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Area, Category, Unit

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[120.1, 30.1], [120.2, 30.1], [120.2, 30.2], [120.1, 30.2], [120.1, 30.1]]],
}

AREA_HEADER = ["code", "name", "level", "parent_code", "aliases", "polygon", "lat", "lon"]
# Children first, parents last: the importer must resolve them in passes.
AREA_ROWS = [
    ["33990101", "幸福社区", "community", "339901", "幸福|幸福社区居委会", "", "", ""],
    ["339901", "鼓楼区", "district", "3399", "鼓楼", json.dumps(SQUARE), "30.15", "120.15"],
    ["3399", "民声市", "city", "", "民声", "", "", ""],
]


def write_csv(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[str]], encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_xlsx(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    wb.save(path)
    return path


def count(db: Database, model: type) -> int:
    with reading(db) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def run(db: Database, importer, path: Path):  # type: ignore[no-untyped-def]
    with writing(db) as s:
        return importer(s, path, NOW)


def area(db: Database, code: str) -> Area:
    with reading(db) as s:
        a = s.scalar(select(Area).where(Area.code == code))
        assert a is not None, code
        return a


def test_areas_from_csv_resolve_parents_that_come_later(db: Database, tmp_path: Path) -> None:
    report = run(db, import_areas, write_csv(tmp_path / "areas.csv", AREA_HEADER, AREA_ROWS, "utf-8-sig"))
    assert report.errors == []
    assert report.created == len(AREA_ROWS)
    community = area(db, "33990101")
    district = area(db, "339901")
    assert community.parent_id == district.id
    assert community.path == "/3399/339901/33990101/"
    assert community.aliases == ["幸福", "幸福社区居委会"]
    assert district.polygon == SQUARE
    assert (district.lat, district.lon) == (30.15, 120.15)


def test_reimport_updates_names_and_leaves_the_rest(db: Database, tmp_path: Path) -> None:
    run(db, import_areas, write_csv(tmp_path / "a.csv", AREA_HEADER, AREA_ROWS))
    renamed = [list(r) for r in AREA_ROWS]
    renamed[0][1] = "新幸福社区"
    report = run(db, import_areas, write_csv(tmp_path / "b.csv", AREA_HEADER, renamed))
    assert (report.created, report.updated, report.skipped, report.errors) == (0, 1, len(AREA_ROWS) - 1, [])
    assert area(db, "33990101").name == "新幸福社区"
    assert count(db, Area) == len(AREA_ROWS)


def test_moving_an_area_rewrites_the_paths_below_it(db: Database, tmp_path: Path) -> None:
    rows = [*AREA_ROWS, ["339902", "东城区", "district", "3399", "", "", "", ""]]
    rows.append(["3399020101", "第1网格", "grid", "33990101", "", "", "", ""])
    run(db, import_areas, write_csv(tmp_path / "a.csv", AREA_HEADER, rows))
    moved = [["33990101", "幸福社区", "community", "339902", "", "", "", ""]]
    report = run(db, import_areas, write_csv(tmp_path / "b.csv", AREA_HEADER, moved))
    assert report.errors == [] and report.updated == 1
    assert area(db, "3399020101").path == "/3399/339902/33990101/3399020101/"


def test_areas_from_xlsx_with_numeric_codes(db: Database, tmp_path: Path) -> None:
    # Spreadsheets store codes typed as numbers as numbers: they must come back as the same codes.
    rows = [
        [3399, "民声市", "city", None, "民声", None, None, None],
        [339901, "鼓楼区", "district", 3399, None, None, 30.1, 120.1],
    ]
    report = run(db, import_areas, write_xlsx(tmp_path / "areas.xlsx", AREA_HEADER, rows))
    assert report.errors == [] and report.created == 2
    assert area(db, "339901").parent_id == area(db, "3399").id


def test_bad_rows_are_reported_with_their_row_numbers(db: Database, tmp_path: Path) -> None:
    rows = [
        ["3399", "民声市", "city", "", "", "", "", ""],  # row 2: fine
        ["339901", "鼓楼区", "borough", "3399", "", "", "", ""],  # row 3: unknown level
        ["339902", "", "district", "3399", "", "", "", ""],  # row 4: no name
        ["339903", "西山区", "district", "3399", "", "{not json", "", ""],  # row 5: bad polygon
        ["339904", "北湖区", "district", "3399", "", "", "95", "120"],  # row 6: impossible latitude
        ["339905", "南江区", "district", "9999", "", "", "", ""],  # row 7: unknown parent
        ["339906", "东城区", "district", "3399", "", "", "", ""],  # row 8: fine
        ["33990601", "幸福社区", "community", "339901", "", "", "", ""],  # row 9: parent refused in row 3
        ["3399", "民声市", "city", "", "", "", "", ""],  # row 10: same code twice
    ]
    report = run(db, import_areas, write_csv(tmp_path / "areas.csv", AREA_HEADER, rows))
    refused = dict(report.errors)
    assert sorted(refused) == [3, 4, 5, 6, 7, 9, 10]
    assert "borough" in refused[3]
    assert "name" in refused[4]
    assert "polygon" in refused[5]
    assert "lat" in refused[6]
    assert "9999" in refused[7]
    assert "339901" in refused[9] and "row 3" in refused[9]
    assert "row 2" in refused[10]
    assert report.created == 2
    assert count(db, Area) == 2


def test_a_cycle_in_parent_references_is_refused(db: Database, tmp_path: Path) -> None:
    rows = [
        ["A1", "甲", "street", "B1", "", "", "", ""],
        ["B1", "乙", "street", "A1", "", "", "", ""],
        ["C1", "丙", "community", "A1", "", "", "", ""],
        ["3399", "民声市", "city", "", "", "", "", ""],
    ]
    report = run(db, import_areas, write_csv(tmp_path / "areas.csv", AREA_HEADER, rows))
    refused = dict(report.errors)
    assert sorted(refused) == [2, 3, 4]
    assert "cycle" in refused[2] and "cycle" in refused[3]
    assert count(db, Area) == 1


def test_moving_a_node_under_its_own_descendant_is_a_cycle(db: Database, tmp_path: Path) -> None:
    header = ["code", "name", "parent_code"]
    run(
        db, import_categories, write_csv(tmp_path / "a.csv", header, [["01", "甲", ""], ["0101", "乙", "01"]])
    )
    report = run(db, import_categories, write_csv(tmp_path / "b.csv", header, [["01", "甲", "0101"]]))
    assert len(report.errors) == 1 and "cycle" in report.errors[0][1]
    with reading(db) as s:
        assert s.scalar(select(Category.path).where(Category.code == "0101")) == "/01/0101/"


def test_a_missing_column_refuses_the_file_and_writes_nothing(db: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "areas.csv", ["code", "name"], [["3399", "民声市"]])
    with pytest.raises(ImportFileError, match="level"):
        run(db, import_areas, path)
    assert count(db, Area) == 0


@pytest.mark.parametrize(
    ("name", "content"),
    [("areas.xlsx", b"this is not a zip file"), ("areas.xls", b"\xd0\xcf\x11\xe0"), ("empty.csv", b"")],
)
def test_an_unreadable_file_is_refused(db: Database, tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFileError):
        run(db, import_areas, path)
    assert count(db, Area) == 0


def test_units_and_users_in_any_order(db: Database, tmp_path: Path) -> None:
    run(db, import_areas, write_csv(tmp_path / "areas.csv", AREA_HEADER, AREA_ROWS))
    unit_header = ["code", "name", "kind", "parent_code", "area_code", "duty_tier", "phone", "leader_name"]
    units = [
        ["st01", "幸福街道办事处", "street_office", "dist01", "339901", "2", "0571-1", "王伟"],
        ["dist01", "鼓楼区人民政府", "district_office", "", "339901", "", "", ""],
        ["bad", "坏单位", "spaceship", "", "", "", "", ""],
        ["bad2", "坏单位", "department", "", "", "7", "", ""],
    ]
    report = run(db, import_units, write_xlsx(tmp_path / "units.xlsx", unit_header, units))
    assert report.created == 2
    assert sorted(n for n, _ in report.errors) == [4, 5]
    with reading(db) as s:
        st = s.scalar(select(Unit).where(Unit.code == "st01"))
        dist = s.scalar(select(Unit).where(Unit.code == "dist01"))
        assert st is not None and dist is not None
        assert (st.parent_id, st.duty_tier, st.leader_name) == (dist.id, 2, "王伟")
        assert dist.duty_tier == 3

    user_header = ["username", "display_name", "role", "unit_code", "phone", "password"]
    users = [
        ["handler1", "李娜", "handler", "st01", "13800000000", "secret-pass-1"],
        ["leader1", "赵强", "leader", "", "", ""],
        ["handler2", "无单位", "handler", "", "", ""],  # a handler needs a unit
        ["ghost", "某人", "wizard", "", "", ""],  # unknown role
        ["short", "某人", "operator", "", "", "123"],  # password too short
    ]
    report = run(db, import_users, write_csv(tmp_path / "users.csv", user_header, users))
    assert report.created == 2
    assert sorted(n for n, _ in report.errors) == [4, 5, 6]
    with writing(db) as s:
        user = authenticate(s, "handler1", "secret-pass-1")
        assert user.unit is not None and user.unit.code == "st01"

    # Re-import: a new display name updates; an empty password keeps the old one.
    users[0][1], users[0][5] = "李娜娜", ""
    report = run(db, import_users, write_csv(tmp_path / "users2.csv", user_header, users[:2]))
    assert (report.created, report.updated, report.skipped) == (0, 1, 1)
    with writing(db) as s:
        assert authenticate(s, "handler1", "secret-pass-1").display_name == "李娜娜"


def test_unit_cycles_are_refused(db: Database, tmp_path: Path) -> None:
    header = ["code", "name", "kind", "parent_code"]
    rows = [["u1", "甲", "department", ""], ["u2", "乙", "department", "u1"]]
    run(db, import_units, write_csv(tmp_path / "u.csv", header, rows))
    report = run(db, import_units, write_csv(tmp_path / "u2.csv", header, [["u1", "甲", "department", "u2"]]))
    assert len(report.errors) == 1 and "cycle" in report.errors[0][1]


def test_categories_with_codes_and_depth_limit(db: Database, tmp_path: Path) -> None:
    header = ["code", "name", "parent_code"]
    rows = [
        ["0101", "市政设施", "01"],
        ["010101", "道路破损", "0101"],
        ["01", "城乡建设", ""],
        ["01010101", "太深了", "010101"],  # a fourth level
    ]
    report = run(db, import_categories, write_csv(tmp_path / "c.csv", header, rows))
    assert report.created == 3
    assert [n for n, _ in report.errors] == [5]
    with reading(db) as s:
        leaf = s.scalar(select(Category).where(Category.code == "010101"))
        assert leaf is not None and (leaf.level, leaf.path) == (3, "/01/0101/010101/")


def _taxonomy_counts(path: Path) -> tuple[set[tuple[str, ...]], ...]:
    with path.open(encoding="utf-8-sig") as f:
        rows = [(r["一级分类"], r["二级分类"], r["三级分类"]) for r in csv.DictReader(f)]
    return tuple({r[:n] for r in rows} for n in (1, 2, 3))


def test_the_real_taxonomy_file(db: Database, shared_data: Path) -> None:
    path = shared_data / "taidi2020c" / "taxonomy_3level.csv"
    l1, l2, l3 = _taxonomy_counts(path)
    # The data set's own description counts distinct names: 15 / 103 / 390. Names such as 其他 repeat under
    # several parents and are distinct nodes of the tree.
    assert (len(l1), len({p[-1] for p in l2}), len({p[-1] for p in l3})) == (15, 103, 390)

    report = run(db, import_categories, path)
    assert report.errors == []
    assert report.created == len(l1) + len(l2) + len(l3)
    with reading(db) as s:
        cats = list(s.scalars(select(Category)))
    by_id = {c.id: c for c in cats}
    per_level = {lvl: sum(1 for c in cats if c.level == lvl) for lvl in (1, 2, 3)}
    assert per_level == {1: len(l1), 2: len(l2), 3: len(l3)}
    # Codes are hierarchical: a child's code extends its parent's by two digits.
    for c in cats:
        assert len(c.code) == 2 * c.level and c.code.isdigit()
        if c.parent_id is not None:
            assert c.code.startswith(by_id[c.parent_id].code)
    # Every path of names in the file is a path in the tree.
    paths: set[tuple[str, ...]] = set()
    for c in cats:
        names: list[str] = []
        cur: Category | None = c
        while cur is not None:
            names.insert(0, cur.name)
            cur = by_id.get(cur.parent_id) if cur.parent_id else None
        paths.add(tuple(names))
    assert paths == l1 | l2 | l3

    # A second import finds every node and keeps its code.
    codes = {c.code for c in cats}
    again = run(db, import_categories, path)
    assert (again.created, again.errors) == (0, [])
    assert again.skipped == len(codes)
    assert count(db, Category) == len(codes)


def test_taxonomy_format_in_xlsx_with_gaps(db: Database, tmp_path: Path) -> None:
    rows = [
        ["城乡建设", "市政设施", "道路破损"],
        ["城乡建设", "市政设施", "路灯故障"],
        ["环境保护", "", ""],  # a first-level node alone is fine
        ["", "水污染", "河道污染"],  # a gap is not
    ]
    report = run(
        db, import_categories, write_xlsx(tmp_path / "t.xlsx", ["一级分类", "二级分类", "三级分类"], rows)
    )
    assert report.created == 5
    assert [n for n, _ in report.errors] == [5]
    with reading(db) as s:
        names = dict(s.execute(select(Category.code, Category.name)).tuples().all())
    assert names == {
        "01": "城乡建设",
        "0101": "市政设施",
        "010101": "道路破损",
        "010102": "路灯故障",
        "02": "环境保护",
    }
