"""The demo city's data files (minsheng/demo/data): they load, and what they name exists."""

from __future__ import annotations

import string
from importlib.resources import files

import pytest

from minsheng.demo import tables
from minsheng.demo.city import DemoCity, generate_city
from minsheng.demo.kb import entries, kb_entries
from minsheng.demo.organisation import category_tree, departments
from minsheng.demo.phrases import asks, generic_templates, issues, phrase, templates, tone_weights
from minsheng.demo.places import place_names
from minsheng.demo.texts import KINDS, TONES

# The slots generate_request fills (texts._slots).
SLOTS = {
    "addr", "loc", "issue", "issue2", "topic", "l2", "when", "dur", "times", "hour", "who", "amount",
    "aspect", "n", "shop", "company", "school", "hospital", "route", "district", "thanks_unit", "ask",
}  # fmt: skip


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate_city(2026)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_data_file_is_read() -> None:
    names = sorted(p.name for p in (files("minsheng.demo") / "data").iterdir() if p.name.endswith(".toml"))
    assert names == [
        "categories.toml",
        "hot_topics.toml",
        "issues.toml",
        "kb.toml",
        "organisation.toml",
        "people.toml",
        "phrases.toml",
        "place_names.toml",
        "templates.toml",
    ]
    for name in names:
        assert tables.load(name.removesuffix(".toml"))
    assert tables.load("kb") is tables.load("kb")  # read once


def test_category_tree_names_known_units(city: DemoCity) -> None:
    units = set(city.unit_by_code)
    externals = {u.code for u in city.units if u.kind == "external"}
    leaves = [leaf for top in category_tree() for sub in top.subs for leaf in sub.leaves]
    assert len(leaves) == len(set(leaves))  # texts key their phrases by level-3 name
    for top in category_tree():
        assert top.lead in units
        for sub in top.subs:
            assert sub.lead in units and set(sub.assists) <= units
            assert sub.local in (None, "street", "district")
            assert set(sub.transfers) <= set(sub.leaves) and set(sub.transfers.values()) <= externals
    assert {code for code, _name, _tier in departments()} <= units


def test_every_leaf_has_phrases_and_every_top_category_templates() -> None:
    leaves = [leaf for top in category_tree() for sub in top.subs for leaf in sub.leaves]
    assert list(issues()) == leaves
    assert list(templates()) == [top.name for top in category_tree()]


def test_templates_use_known_slots_and_kinds() -> None:
    for rows in (*templates().values(), generic_templates()):
        for kind, title, detail in rows:
            assert kind in KINDS
            assert _fields(title) | _fields(detail) <= SLOTS, (title, detail)
    for tone, endings in asks().items():
        assert tone in TONES
        assert all(_fields(e) <= SLOTS for e in endings)
    assert all(len(w) == len(TONES) for w in tone_weights().values())


def test_word_lists_are_words() -> None:
    for name in (
        "when",
        "dur",
        "times",
        "hour",
        "who",
        "aspect",
        "shops",
        "company_a",
        "company_b",
        "building",
    ):
        assert phrase(name) and all(w.strip() == w and w for w in phrase(name)), name
    names = place_names()
    assert len(names.districts) == 5
    assert len(set(names.area_stems)) == len(names.area_stems)


def test_kb_entries_name_known_categories_and_departments(city: DemoCity) -> None:
    categories = {c.name for c in city.categories}
    for e in entries():
        assert e.category in categories and e.department in city.unit_by_code, e.title
        assert _fields(e.body) <= {"phone", "where"}, e.title
    for item in kb_entries(city):
        assert "{" not in item.body and item.category_code is not None
