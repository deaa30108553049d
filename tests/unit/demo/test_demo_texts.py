"""Request texts, addresses, fake citizens and the jurisdiction test set of the demo city."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from shapely.geometry import Point, shape

from minsheng.demo.city import DemoCity, generate_city
from minsheng.demo.phrases import emergency, generic_templates, issues, often_urgent, templates, topic_like
from minsheng.demo.texts import (
    KINDS,
    RequestText,
    fake_id_number,
    fake_mobile,
    generate_citizen,
    generate_request,
    id_check_digit,
    is_valid_id_number,
    jurisdiction_test_set,
)


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate_city(2026)


def _requests(city: DemoCity, n: int, seed: int = 11) -> list[tuple[str, str, RequestText]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        leaf = rng.choice(city.leaf_categories)
        grid = rng.choice(city.grid_codes)
        out.append((leaf.code, grid, generate_request(rng, city, leaf.code, grid)))
    return out


def test_id_check_digit() -> None:
    assert id_check_digit("11010519491231002") == "X"  # the example of GB 11643
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")
    rng = random.Random(1)
    for _ in range(500):
        number = fake_id_number(rng)
        assert is_valid_id_number(number)
        assert 1940 <= int(number[6:10]) <= 2006 and 1 <= int(number[10:12]) <= 12
    assert int(fake_id_number(rng, male=True)[16]) % 2 == 1
    assert int(fake_id_number(rng, male=False)[16]) % 2 == 0


def test_citizens() -> None:
    rng = random.Random(2)
    for _ in range(300):
        c = generate_citizen(rng)
        assert re.fullmatch(r"1[3589]\d{9}", c.phone)
        assert is_valid_id_number(c.id_number)
        assert 2 <= len(c.name) <= 4
    assert re.fullmatch(r"1[3589]\d{9}", fake_mobile(rng))


def test_templates_per_category(city: DemoCity) -> None:
    for c in city.categories:
        if c.level == 1:
            assert len(templates()[c.name]) >= 8, c.name
            assert len({t[0] for t in templates()[c.name]}) >= 5  # several kinds per category
        if c.level == 3:
            assert len(issues()[c.name]) >= 2, c.name
    assert {t[0] for t in generic_templates()} == set(KINDS)


def test_text_variety_and_fields(city: DemoCity) -> None:
    reqs = _requests(city, 2000)
    titles = [r.title for _, _, r in reqs]
    details = [r.detail for _, _, r in reqs]
    assert len(set(titles)) >= 0.9 * len(titles)
    assert len(set(details)) >= 0.97 * len(details)
    kinds = Counter(r.kind for _, _, r in reqs)
    assert set(kinds) == set(KINDS)
    assert Counter(r.urgency for _, _, r in reqs).keys() == {"normal", "urgent", "emergency"}
    for _, _, r in reqs:
        assert "{" not in r.title + r.detail and "}" not in r.title + r.detail
        assert r.title and r.detail and r.address
    # Kind and wording agree: consultations ask, complaints complain, praise thanks.
    for _, _, r in reqs:
        if r.kind == "consultation":
            assert re.search(r"请问|咨询|想了解|想问|怎么|？", r.title + r.detail)
        if r.kind == "praise":
            assert re.search(r"感谢|表扬|谢", r.title + r.detail)


def test_addresses_use_city_names_and_points_fall_inside(city: DemoCity) -> None:
    rng = random.Random(4)
    known = [a.name for a in city.areas if a.level != "grid"] + [p.name for p in city.places]
    known += [a.aliases[0] for a in city.areas_at("district")]
    for _ in range(300):
        grid = rng.choice(city.grid_codes)
        leaf = rng.choice(city.leaf_categories)
        r = generate_request(rng, city, leaf.code, grid, with_gps=True)
        assert any(name in r.address for name in known), r.address
        assert r.lat is not None and r.lon is not None
        assert shape(city.area_by_code[grid].polygon).contains(Point(r.lon, r.lat))
        if r.place_name is not None:
            place = next(p for p in city.places if p.name == r.place_name)
            assert place.grid_code == grid
    r = generate_request(rng, city, "01", "339901", with_gps=False, kind="complaint")
    assert r.lat is None and r.kind == "complaint"


def test_deterministic(city: DemoCity) -> None:
    assert _requests(city, 50, seed=3) == _requests(city, 50, seed=3)
    assert _requests(city, 50, seed=3) != _requests(city, 50, seed=4)


def test_vocabulary_separates_categories(city: DemoCity) -> None:
    """A plain character-bigram classifier learns the first-level category well, but not perfectly."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    reqs = _requests(city, 4000, seed=21)
    texts = [r.title + " " + r.detail for _, _, r in reqs]
    labels = [code[:2] for code, _, _ in reqs]
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), min_df=2)
    x = vec.fit_transform(texts)
    clf = LogisticRegression(max_iter=400).fit(x[:3000], labels[:3000])
    accuracy = (clf.predict(x[3000:]) == labels[3000:]).mean()
    assert 0.8 <= accuracy < 1.0


def test_jurisdiction_test_set(city: DemoCity) -> None:
    cases = jurisdiction_test_set(city, 500, seed=9)
    assert len(cases) == 500
    assert cases == jurisdiction_test_set(city, 500, seed=9)
    levels = Counter(city.area_by_code[code].level for _, code, _, _ in cases)
    assert levels["grid"] > 200 and levels["street"] > 0 and levels["community"] > 0
    with_point = 0
    for text, code, lat, lon in cases:
        area = city.area_by_code[code]
        if lat is not None and lon is not None:
            with_point += 1
            assert area.level == "grid"
            assert shape(area.polygon).contains(Point(lon, lat))
        else:
            # Without a point, the text itself names the expected area (or a place inside it, or its grid).
            names = [x.name for x in city.ancestors(code)] + list(area.aliases)
            names += [p.name for p in city.places if p.grid_code == code] + [
                alias for p in city.places if p.grid_code == code for alias in p.aliases
            ]
            assert any(n in text for n in names if len(n) > 1), (text, code)
    assert 100 < with_point < 300


def test_category_word_lists_name_real_categories(city: DemoCity) -> None:
    leaves = {c.name for c in city.leaf_categories}
    assert set(issues()) == leaves
    assert (topic_like() | emergency() | often_urgent()).issubset(leaves)
    assert len(topic_like()) > 40
