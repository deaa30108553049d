"""Jurisdiction: gazetteer text resolution, point-in-polygon, and the combined facade."""

from __future__ import annotations

import math

import pytest

from minsheng.triage.jurisdiction import (
    AreaRecord,
    Gazetteer,
    Jurisdiction,
    PlaceRecord,
    PolygonIndex,
)

A = AreaRecord

# Two districts that each have a "幸福路街道" with an "阳光社区": the classic ambiguous names.
AREAS = [
    A("C", "民声市", "city"),
    A("D1", "朝阳区", "district", "C"),
    A("D2", "海淀区", "district", "C", aliases=("海淀",)),
    A("S1", "幸福路街道", "street", "D1"),
    A("S2", "幸福路街道", "street", "D2"),
    A("S3", "城关镇", "street", "D2"),
    A("K1", "阳光社区", "community", "S1"),
    A("K2", "阳光社区", "community", "S2"),
    A("K3", "翠湖社区", "community", "S3"),
    A("K4", "青松社区", "community", "S2"),
]
PLACES = [
    PlaceRecord("P1", "锦绣花园小区", "K1", kind="小区", aliases=("锦绣花园",)),
    PlaceRecord("P2", "实验二小", "K4", kind="学校", aliases=("第二实验小学",)),
]


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer(AREAS, PLACES)


def test_district_in_text_settles_a_name_shared_by_two_districts(gazetteer: Gazetteer) -> None:
    for district, expected in (("朝阳区", "K1"), ("海淀区", "K2")):
        r = gazetteer.resolve_text(f"{district}幸福路街道阳光社区5号楼")
        assert r is not None
        assert r.area_code == expected
        assert r.chain[-1] == expected and r.chain[0] == "C"
        assert not r.ambiguous
        assert r.method == "text"
        assert district in r.matched


def test_shared_name_alone_is_ambiguous_and_falls_back_to_common_ancestor(gazetteer: Gazetteer) -> None:
    r = gazetteer.resolve_text("阳光社区门口垃圾没人清")
    assert r is not None
    assert r.ambiguous
    assert set(r.candidates) == {"K1", "K2"}
    assert r.area_code == "C"
    assert r.confidence < 0.6
    assert "阳光社区" in r.explanation


def test_street_mentioned_settles_community(gazetteer: Gazetteer) -> None:
    r = gazetteer.resolve_text("青松社区旁边，幸福路街道的阳光社区")
    assert r is not None
    # 青松社区 lies only under S2, which pulls the shared names there; two communities named → their street.
    assert r.area_code == "S2"
    assert set(r.candidates) == {"K2", "K4"}
    assert r.ambiguous


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("朝阳区幸福路128号", "S1"),  # road name = street stem
        ("海淀区幸福路街道办事处", "S2"),  # longer official form
        ("城关乡翠湖村委会", "K3"),  # 乡 for 镇, 村委会 for 社区
        ("城关镇翠湖", "K3"),
        ("海淀青松社区", "K4"),  # alias of the district
    ],
)
def test_suffix_variants(gazetteer: Gazetteer, text: str, expected: str) -> None:
    r = gazetteer.resolve_text(text)
    assert r is not None
    assert r.area_code == expected
    assert not r.ambiguous


def test_full_width_and_spaces_are_folded(gazetteer: Gazetteer) -> None:
    plain = gazetteer.resolve_text("海淀区城关镇翠湖社区3号")
    wide = gazetteer.resolve_text("海淀区　城关镇 翠湖社区３号")
    assert plain is not None and wide is not None
    assert wide.area_code == plain.area_code == "K3"


def test_places_resolve_to_their_area(gazetteer: Gazetteer) -> None:
    for text, area, place in (("锦绣花园东门路灯坏了", "K1", "P1"), ("第二实验小学门口拥堵", "K4", "P2")):
        r = gazetteer.resolve_text(text)
        assert r is not None
        assert r.area_code == area
        assert r.method == "place"
        assert r.place_id == place


def test_place_beats_a_shorter_name_inside_it(gazetteer: Gazetteer) -> None:
    r = gazetteer.resolve_text("锦绣花园小区")
    assert r is not None and r.place_id == "P1"


@pytest.mark.parametrize("text", ["", "今天天气很好", "😀😀😀", "！！！", "请问公积金怎么提取"])
def test_unknown_text_gives_none(gazetteer: Gazetteer, text: str) -> None:
    assert gazetteer.resolve_text(text) is None


def test_contradicting_text_is_flagged(gazetteer: Gazetteer) -> None:
    r = gazetteer.resolve_text("朝阳区城关镇翠湖社区")
    assert r is not None
    assert r.ambiguous
    assert "朝阳区" in r.explanation


def test_long_text_still_resolves(gazetteer: Gazetteer) -> None:
    r = gazetteer.resolve_text("噪音" * 5000 + "海淀区城关镇翠湖社区")
    assert r is not None and r.area_code == "K3"


def test_gazetteers_coexist_without_touching_global_jieba() -> None:
    import jieba

    jieba.initialize()
    names = ["远方市", "桃源区", *(a.name for a in AREAS)]
    before = {w: jieba.dt.FREQ.get(w) for w in names}
    other = Gazetteer([A("X", "远方市", "city"), A("XD", "桃源区", "district", "X")])
    mine = Gazetteer(AREAS)
    assert other.resolve_text("桃源区阳光社区") is not None
    assert other.resolve_text("城关镇翠湖") is None
    assert mine.resolve_text("桃源区") is None
    # The global dictionary is exactly as it was: each gazetteer tokenises with its own dictionary.
    assert {w: jieba.dt.FREQ.get(w) for w in names} == before


def test_duplicate_area_code_rejected() -> None:
    with pytest.raises(ValueError):
        Gazetteer([A("C", "民声市", "city"), A("C", "又一市", "city")])


# -- polygons ------


def _box(x0: float, y0: float, x1: float, y1: float) -> dict[str, object]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


LON0, LAT0 = 116.0, 39.0


def grid_areas(with_gap: bool = False) -> list[AreaRecord]:
    """A 4×4-cell city: 2 districts (west/east), 4 streets of 2×2 cells, 16 communities of one cell."""
    areas = [A("C", "格子市", "city", None, (), _box(LON0, LAT0, LON0 + 4, LAT0 + 4))]
    for d in range(2):
        areas.append(
            A(f"D{d}", f"区{d}", "district", "C", (), _box(LON0 + 2 * d, LAT0, LON0 + 2 * d + 2, LAT0 + 4))
        )
        for s in range(2):
            code = f"D{d}S{s}"
            areas.append(
                A(
                    code,
                    f"街{d}{s}",
                    "street",
                    f"D{d}",
                    (),
                    _box(LON0 + 2 * d, LAT0 + 2 * s, LON0 + 2 * d + 2, LAT0 + 2 * s + 2),
                )
            )
            for i in range(2):
                for j in range(2):
                    x, y = LON0 + 2 * d + i, LAT0 + 2 * s + j
                    poly = None if with_gap and code == "D1S1" else _box(x, y, x + 1, y + 1)
                    areas.append(A(f"{code}K{i}{j}", f"社区{d}{s}{i}{j}", "community", code, (), poly))
    return areas


def expected_cell(lat: float, lon: float) -> str:
    cx, cy = int(lon - LON0), int(lat - LAT0)
    return f"D{cx // 2}S{cy // 2}K{cx % 2}{cy % 2}"


@pytest.fixture(scope="module")
def polygons() -> PolygonIndex:
    return PolygonIndex(grid_areas())


def test_point_lands_in_deepest_area_with_chain(polygons: PolygonIndex) -> None:
    for cx in range(4):
        for cy in range(4):
            lat, lon = LAT0 + cy + 0.37, LON0 + cx + 0.61
            r = polygons.locate(lat, lon)
            assert r is not None
            code = expected_cell(lat, lon)
            assert r.area_code == code
            assert r.level == "community"
            assert r.chain == ["C", code[:2], code[:4], code]
            assert r.method == "point"
            assert not r.ambiguous


def test_point_outside_every_polygon(polygons: PolygonIndex) -> None:
    assert polygons.locate(LAT0 - 1, LON0 - 1) is None
    assert polygons.locate(0.0, 0.0) is None


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(91.0, 116.0), (-90.5, 116.0), (39.0, 180.01), (39.0, -181.0), (math.nan, 116.0), (39.0, math.inf)],
)
def test_impossible_coordinates_rejected(polygons: PolygonIndex, lat: float, lon: float) -> None:
    with pytest.raises(ValueError):
        polygons.locate(lat, lon)


def test_point_on_shared_boundary_is_flagged(polygons: PolygonIndex) -> None:
    r = polygons.locate(LAT0 + 0.5, LON0 + 1.0)
    assert r is not None
    assert r.ambiguous
    assert r.area_code in r.candidates and len(r.candidates) == 2
    assert r.confidence < 1.0


def test_gap_in_community_polygons_falls_back_to_street() -> None:
    index = PolygonIndex(grid_areas(with_gap=True))
    r = index.locate(LAT0 + 2.5, LON0 + 2.5)
    assert r is not None
    assert r.area_code == "D1S1" and r.level == "street"


# -- facade ------


@pytest.fixture(scope="module")
def jurisdiction() -> Jurisdiction:
    return Jurisdiction(grid_areas(), [PlaceRecord("P9", "幸福家园", "D0S0K00")])


def test_point_wins_and_disagreement_is_explained(jurisdiction: Jurisdiction) -> None:
    lat, lon = LAT0 + 3.5, LON0 + 3.5
    r = jurisdiction.resolve("幸福家园门口", lat=lat, lon=lon)
    assert r is not None
    assert r.area_code == expected_cell(lat, lon)
    assert r.method == "point"
    assert "不一致" in r.explanation


def test_text_used_when_point_missing_or_outside(jurisdiction: Jurisdiction) -> None:
    r = jurisdiction.resolve("幸福家园门口")
    assert r is not None and r.area_code == "D0S0K00" and r.method == "place"
    outside = jurisdiction.resolve("幸福家园门口", lat=10.0, lon=10.0)
    assert outside is not None and outside.area_code == "D0S0K00"
    assert "坐标" in outside.explanation


def test_text_and_point_agreeing(jurisdiction: Jurisdiction) -> None:
    r = jurisdiction.resolve("幸福家园", lat=LAT0 + 0.5, lon=LON0 + 0.5)
    assert r is not None and r.area_code == "D0S0K00"
    assert "一致" in r.explanation and "不一致" not in r.explanation


def test_facade_rejects_half_a_point(jurisdiction: Jurisdiction) -> None:
    with pytest.raises(ValueError):
        jurisdiction.resolve("幸福家园", lat=39.5)
    assert jurisdiction.resolve() is None


# -- the request's own words (title and detail) ------


def test_detail_naming_a_place_resolves_with_lower_confidence(gazetteer: Gazetteer) -> None:
    r = gazetteer.resolve_detail("锦绣花园3号楼门口的垃圾好几天没人清运")
    assert r is not None
    assert (r.area_code, r.place_id, r.method) == ("K1", "P1", "detail_text")
    address = gazetteer.resolve_text("锦绣花园3号楼")
    assert address is not None
    assert 0.5 <= r.confidence < address.confidence
    assert not r.ambiguous
    assert r.explanation.startswith("诉求内容提及“锦绣花园”")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("市民来电：海淀区城关镇翠湖社区门口的井盖丢了", "K3"),  # the full chain inside a sentence
        ("我住在城关乡翠湖那边，路灯坏了", "K3"),  # a bare stem right after a suffixed name
        ("海淀那边阳光社区门口垃圾没人清", "K2"),  # a district alias settles a shared community name
        ("第二实验小学门口接送孩子的车堵死了", "K4"),  # a place alias
        ("海淀青松那边的路灯一直不亮", "K4"),  # two bare names on one chain
        ("我们朝阳区幸福路街道办一直不处理", "S1"),
    ],
)
def test_detail_hits(gazetteer: Gazetteer, text: str, expected: str) -> None:
    r = gazetteer.resolve_detail(text)
    assert r is not None, text
    assert r.area_code == expected
    assert r.method == "detail_text"
    assert r.confidence >= 0.5 and not r.ambiguous


def test_two_bare_names_weigh_less_than_a_suffixed_one(gazetteer: Gazetteer) -> None:
    weak = gazetteer.resolve_detail("海淀青松那边的路灯一直不亮")
    strong = gazetteer.resolve_detail("海淀区青松社区的路灯一直不亮")
    assert weak is not None and strong is not None
    assert weak.area_code == strong.area_code == "K4"
    assert weak.confidence < strong.confidence


@pytest.mark.parametrize(
    "text",
    [
        "路灯坏了好几天了",
        "小区门口的垃圾没人清运",
        "找了街道和社区都说不归他们管",
        "我们小区的街道很脏，路灯也不亮",
        "你好，小区物业说这事要找街道办",
        "今天阳光很好，可是楼下噪音太大",  # 阳光: the bare name of two communities
        "海淀的路灯坏了",  # one bare alias alone
        "幸福路小区3号楼门口的垃圾好几天没人清运",  # a road's name is not its street
        "民声市民政局的电话打不通",  # naming only the city says nothing
        "阳光社区门口垃圾没人清",  # a name two districts share, nothing to settle it
    ],
)
def test_no_false_hits_on_generic_words(gazetteer: Gazetteer, text: str) -> None:
    r = gazetteer.resolve_detail(text)
    assert r is None or r.confidence < 0.5, r


def test_line_break_separates_title_from_detail(gazetteer: Gazetteer) -> None:
    assert gazetteer.resolve_detail("青松社区门口积水") is not None
    # "青松" ends the title and "社区" starts the detail: no name is read across the break.
    assert gazetteer.resolve_detail("关于青松\n社区门口积水") is None


def test_bare_word_does_not_deepen_a_suffixed_name(gazetteer: Gazetteer) -> None:
    r = gazetteer.resolve_detail("海淀区的路灯坏了，不过今天阳光很好")
    assert r is not None
    assert r.area_code == "D2"  # not 阳光社区 (K2), which merely lies in 海淀区
    assert "未采用“阳光”" in r.explanation


def test_two_firm_places_in_one_request_are_not_trusted(gazetteer: Gazetteer) -> None:
    r = gazetteer.resolve_detail("我住城关镇翠湖社区，在锦绣花园上班，那边路灯坏了")
    assert r is not None
    assert r.ambiguous and r.confidence < 0.5
    assert "不一致" in r.explanation


@pytest.fixture(scope="module")
def by_name() -> Jurisdiction:
    return Jurisdiction(AREAS, PLACES)


def test_detail_fills_a_missing_address(by_name: Jurisdiction) -> None:
    r = by_name.resolve(detail_text="垃圾清运不及时\n锦绣花园3号楼门口的垃圾好几天没人清运")
    assert r is not None and r.area_code == "K1" and r.method == "detail_text"
    assert "未提供地址和坐标" in r.explanation
    unresolved = by_name.resolve("人民大厦对面", detail_text="锦绣花园门口")
    assert unresolved is not None and unresolved.area_code == "K1"
    assert "地址文本未能识别区划" in unresolved.explanation
    assert by_name.resolve(detail_text="路灯坏了") is None


def test_detail_refines_a_coarse_address(by_name: Jurisdiction) -> None:
    coarse = by_name.resolve("海淀区")
    r = by_name.resolve("海淀区", detail_text="城关镇翠湖社区门口的井盖丢了")
    alone = by_name.gazetteer.resolve_detail("城关镇翠湖社区门口的井盖丢了")
    assert coarse is not None and alone is not None and r is not None
    assert coarse.area_code == "D2"
    assert r.area_code == "K3" and r.method == "detail_text"
    assert "细化了地址所在的 海淀区" in r.explanation and r.explanation.startswith("地址文本")
    assert r.confidence > alone.confidence  # the address agrees on the upper levels
    assert r.confidence < coarse.confidence


def test_detail_never_contradicts_a_confident_address(by_name: Jurisdiction) -> None:
    r = by_name.resolve("朝阳区幸福路街道阳光社区", detail_text="我在城关镇翠湖社区上班，路灯坏了")
    assert r is not None
    assert r.area_code == "K1" and r.method == "text"
    assert "不一致" in r.explanation and "以地址为准" in r.explanation
    # A coarse address is not refined by words pointing elsewhere either.
    coarse = by_name.resolve("朝阳区", detail_text="城关镇翠湖社区门口")
    assert coarse is not None and coarse.area_code == "D1" and "不一致" in coarse.explanation


def test_detail_agreeing_with_the_address_changes_nothing(by_name: Jurisdiction) -> None:
    plain = by_name.resolve("海淀区城关镇翠湖社区")
    r = by_name.resolve("海淀区城关镇翠湖社区", detail_text="城关镇这边路灯坏了")
    assert plain is not None and r is not None
    assert (r.area_code, r.method, r.confidence) == (plain.area_code, plain.method, plain.confidence)
    assert "与之一致" in r.explanation


def test_detail_settles_an_ambiguous_address(by_name: Jurisdiction) -> None:
    tied = by_name.resolve("阳光社区")
    assert tied is not None and tied.ambiguous and set(tied.candidates) == {"K1", "K2"}
    r = by_name.resolve("阳光社区", detail_text="海淀区这边路灯坏了")
    assert r is not None and r.area_code == "K2" and not r.ambiguous
    assert r.confidence >= 0.5 and "确定了 阳光社区" in r.explanation
    deeper = by_name.resolve("阳光社区", detail_text="锦绣花园门口路灯坏了")
    assert deeper is not None and deeper.area_code == "K1" and deeper.place_id == "P1"
    neither = by_name.resolve("阳光社区", detail_text="城关镇翠湖社区门口")
    assert neither is not None and neither.area_code == "C" and neither.ambiguous
    assert "与各候选均不一致" in neither.explanation


def test_detail_never_contradicts_a_point(jurisdiction: Jurisdiction) -> None:
    lat, lon = LAT0 + 3.5, LON0 + 3.5
    r = jurisdiction.resolve(None, lat, lon, detail_text="幸福家园门口路灯坏了")
    assert r is not None
    assert r.area_code == expected_cell(lat, lon) and r.method == "point"
    assert "以坐标为准" in r.explanation
    same = jurisdiction.resolve(None, LAT0 + 0.5, LON0 + 0.5, detail_text="幸福家园门口路灯坏了")
    assert same is not None and same.area_code == "D0S0K00" and same.method == "point"
    assert "与之一致" in same.explanation


def test_detail_refines_a_point_that_fell_into_a_gap() -> None:
    j = Jurisdiction(grid_areas(with_gap=True), [PlaceRecord("P8", "杏林苑", "D1S1K00")])
    r = j.resolve(None, LAT0 + 2.5, LON0 + 2.5, detail_text="杏林苑东门路灯坏了")
    assert r is not None
    assert r.area_code == "D1S1K00" and r.method == "detail_text"
    assert "细化了坐标所在的 街11" in r.explanation
