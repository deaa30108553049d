"""Open311's limits and publication setting on both stores (issue 16): POSTs are counted per API key and GETs
per client address (429 with Retry-After, in GeoReport's error format), and with `open311_publish=all` every
ticket but a confidential one is listed, its personal data still left out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from minsheng.asgi import create_app
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.services import open311_keys
from minsheng.storage.db import Database
from tests.factories import PASSWORD, small_city


@pytest.fixture
def strict(
    db: Database, db_url: str, clock: FixedClock, tmp_path: Path
) -> Iterator[tuple[TestClient, str, str]]:
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
        one = open311_keys.issue(session, "one", clock.now())
        two = open311_keys.issue(session, "two", clock.now())
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        embedded_worker=False,
        environment="test",
        open311_key_limit="2/minute",
        open311_read_limit="6/minute",
        open311_publish="all",
    )
    with TestClient(create_app(settings, clock=clock, db=db)) as client:
        yield client, one, two


def _form(key: str, text: str) -> dict[str, str]:
    return {"api_key": key, "service_code": "010101", "address_string": "幸福路3号", "description": text}


def test_posts_are_limited_per_key_and_gets_per_address(strict: tuple[TestClient, str, str]) -> None:
    c, one, two = strict
    assert c.post("/open311/v2/requests.json", data=_form(one, "路灯坏了一")).status_code == 201
    assert c.post("/open311/v2/requests.json", data=_form(one, "路灯坏了二")).status_code == 201
    r = c.post("/open311/v2/requests.xml", data=_form(one, "路灯坏了三"))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "<code>429</code>" in r.text and "api_key" in r.text
    # Another integration's key has its own count.
    assert c.post("/open311/v2/requests.json", data=_form(two, "路灯坏了四")).status_code == 201
    answers = [c.get("/open311/v2/services.json").status_code for _ in range(7)]
    assert answers[:6] == [200] * 6 and answers[6] == 429
    assert c.get("/open311/v2/requests.json").json()[0]["code"] == 429


def test_publish_all_lists_other_channels_without_personal_data(strict: tuple[TestClient, str, str]) -> None:
    c, _, _ = strict
    op = TestClient(c.app)
    login = op.post("/api/v1/auth/login", json={"username": "operator1", "password": PASSWORD})
    op.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    body = {
        "channel": "phone",
        "citizen_name": "李四",
        "citizen_phone": "13700001111",
        "category_code": "010101",
    }
    plain = op.post("/api/v1/tickets", json=body | {"detail": "李四反映路灯不亮，电话13700001111"}).json()[
        "number"
    ]
    secret = op.post("/api/v1/tickets", json=body | {"detail": "举报偷电", "confidential": True}).json()[
        "number"
    ]
    r = c.get("/open311/v2/requests.json")
    assert r.status_code == 200, r.text
    listed = {x["service_request_id"]: x for x in r.json()}
    assert plain in listed and secret not in listed
    assert "13700001111" not in r.text and "李四" not in r.text
    assert listed[plain]["description"] == "李*反映路灯不亮，电话***"
    assert c.get(f"/open311/v2/requests/{secret}.json").status_code == 404
