"""Open311 GeoReport v2 over real HTTP (issue 16): `minsheng serve` on loopback, one server per store for the
module, read by the PyPI client `georeport` in JSON and XML, written to by a FixMyStreet-style form POST that
follows its token, with the specification's errors, paging, the extensions, mySociety's request updates, the
privacy rules, the admin page's revocation and golden documents written from the specification.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from georeport import GeoReport

from minsheng.domain.clock import SystemClock
from minsheng.services import open311_catalogue, open311_keys
from minsheng.storage.db import open_database
from minsheng.storage.migrate import upgrade
from tests.conftest import create_pg_database, drop_pg_database, pg_skip_reason
from tests.e2e.live.server import LiveServer, child_env, live_server
from tests.factories import png, small_city

GOLDEN = Path(__file__).parent / "open311_golden"
JURISDICTION = "minsheng.example"
PHONE = "13912345678"
NAME = "王小明"
ATTRIBUTES = """[
 {"code": "SOURCE", "datatype": "singlevaluelist", "required": true, "order": 1, "description": "噪声来源",
  "values": [{"key": "shop", "name": "商铺"}, {"key": "site", "name": "工地"}]},
 {"code": "HOURS", "datatype": "string", "order": 2, "description": "持续时间"}
]"""


def _cli(db_url: str, data_dir: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "minsheng.cli.main", *args, "--database-url", db_url],
        env=child_env(db_url, data_dir, {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


@dataclass
class Site:
    server: LiveServer
    db_url: str
    data_dir: Path
    key: str

    @property
    def root(self) -> str:
        return f"{self.server.base_url}/open311/v2"

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.root}/{path}", params=params, timeout=30)

    def post(self, path: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
        # A form body, as FixMyStreet's client (and GeoReport) sends it.
        return httpx.post(f"{self.root}/{path}", data=data, timeout=60, **kw)

    def report(self, description: str, service_code: str = "010101", **extra: str) -> dict[str, Any]:
        form = {
            "api_key": self.key,
            "jurisdiction_id": JURISDICTION,
            "service_code": service_code,
            "lat": "26.2581",
            "long": "107.5171",
            "description": description,
            **extra,
        }
        r = self.post("requests.json", form)
        assert r.status_code in (200, 201), r.text
        return dict(r.json()[0])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp(f"open311-{request.param}")
    pg_name = None
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp / 'minsheng.db'}"
    else:
        reason = pg_skip_reason()
        if reason:
            pytest.skip(reason)
        db_url, pg_name = create_pg_database()
    try:
        upgrade(db_url)
        db = open_database(db_url)
        try:
            with db.write_sessions() as session, session.begin():
                small_city(session, SystemClock().now())
                open311_catalogue.set_definition(
                    session, "0201", "噪声扰民", "噪音,扰民", ATTRIBUTES, SystemClock().now()
                )
                # In process: the command line's key is tested with the admin page (a process costs seconds).
                key = open311_keys.issue(session, "fixmystreet", SystemClock().now())
        finally:
            db.dispose()
        data_dir = tmp / "data"
        with live_server(
            db_url,
            data_dir,
            MINSHENG_OPEN311_JURISDICTION_ID=JURISDICTION,
            MINSHENG_OPEN311_CONTACT="12345@example.gov.cn",
        ) as server:
            yield Site(server, db_url, data_dir, key)
    finally:
        if pg_name:
            drop_pg_database(pg_name)


def _xml(r: httpx.Response) -> ET.Element:
    assert r.headers["content-type"].startswith("text/xml"), r.headers["content-type"]
    return ET.fromstring(r.content)


def _error(r: httpx.Response, status: int, xml: bool = False) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    if xml:
        root = _xml(r)
        assert root.tag == "errors" and [c.tag for c in root[0]] == ["code", "description"]
        assert root[0].findtext("code") == str(status)
        return root[0].findtext("description") or ""
    body = r.json()
    assert isinstance(body, list) and body[0]["code"] == status, body
    return str(body[0]["description"])


# ---------------------------------------------------------------------------------------- the real client
def test_georeport_reads_services_and_definitions_in_json_and_xml(site: Site) -> None:
    for fmt in ("json", "xml"):
        client = GeoReport(site.root, jurisdiction=JURISDICTION, output_format=fmt)
        services = client.get_service_list()
        by_code = {s["service_code"]: s for s in services}
        # The leaves of the category tree: 路灯损坏 under 城乡建设 / 市政设施, 噪声污染 (a leaf at level 2).
        assert set(by_code) == {"010101", "0201"}, services
        assert by_code["010101"]["service_name"] == "路灯损坏"
        assert by_code["010101"]["group"] == "城乡建设 / 市政设施"
        assert str(by_code["0201"]["metadata"]).lower() == "true"
        assert str(by_code["010101"]["metadata"]).lower() == "false"
        definition = client.get_service_definition("0201")
        attrs = definition["attributes"] if fmt == "json" else definition["attributes"]["attribute"]
        assert [a["code"] for a in attrs] == ["SOURCE", "HOURS"]
        values = attrs[0]["values"] if fmt == "json" else attrs[0]["values"]["value"]
        assert [v["key"] for v in values] == ["shop", "site"]


def test_form_post_follows_its_token_and_georeport_reads_the_request(site: Site) -> None:
    form = {
        "api_key": site.key,
        "jurisdiction_id": JURISDICTION,
        "service_code": "010101",
        "lat": "26.2581",
        "long": "107.5171",
        "address_string": "幸福路3号",
        "description": "幸福路3号路灯不亮一周了\n\nurl: https://fms.example/report/41",
        "email": "citizen@example.com",
        "first_name": "小明",
        "last_name": "王",
        "phone": PHONE,
        "media_url": "https://fms.example/photo/41.jpeg",
    }
    r = site.post("requests.xml", form)
    assert r.status_code == 201, r.text
    first = _xml(r).find("request")
    assert first is not None
    token, number = first.findtext("token"), first.findtext("service_request_id")
    assert token and number
    # FixMyStreet follows the token to the request's id.
    r = site.get(f"tokens/{token}.xml", jurisdiction_id=JURISDICTION)
    assert r.status_code == 200, r.text
    assert _xml(r).find("request/service_request_id").text == number  # type: ignore[union-attr]
    assert site.get(f"tokens/{token}.json").json() == [{"service_request_id": number, "token": token}]
    # The same submission again (a retry) is the same ticket: one ticket, the same token.
    again = site.post("requests.json", form)
    assert again.status_code == 200 and again.json()[0]["service_request_id"] == number
    assert again.json()[0]["token"] == token
    for fmt in ("json", "xml"):
        req = GeoReport(site.root, jurisdiction=JURISDICTION, output_format=fmt).get_service_request(number)
        assert req["service_request_id"] == number
        assert req["status"] == "open" and req["status_notes"] == "待派单"
        assert req["service_code"] == "010101" and req["service_name"] == "路灯损坏"
        assert req["address"] == "幸福路3号" and float(req["lat"]) == pytest.approx(26.2581)
        assert "路灯不亮" in req["description"] and "fms.example/photo/41.jpeg" in req["description"]
        listed = GeoReport(site.root, jurisdiction=JURISDICTION, output_format=fmt).get_service_requests(
            service_request_id=number
        )
        listed = listed if isinstance(listed, list) else [listed]
        assert [x["service_request_id"] for x in listed] == [number]


# ------------------------------------------------------------------------------------------------- errors
def test_errors_in_the_specification_format(site: Site) -> None:
    base = {"jurisdiction_id": JURISDICTION, "service_code": "010101", "lat": "26.2", "long": "107.5"}
    assert "api_key" in _error(site.post("requests.xml", base), 403, xml=True)
    assert "not valid" in _error(site.post("requests.json", base | {"api_key": "o311_nope"}), 403)
    keyed = base | {"api_key": site.key}
    assert "jurisdiction" in _error(site.post("requests.json", keyed | {"jurisdiction_id": "elsewhere"}), 404)
    assert "jurisdiction" in _error(site.get("services.xml", jurisdiction_id="elsewhere"), 404, xml=True)
    assert "service_code" in _error(site.post("requests.json", keyed | {"service_code": "999999"}), 404)
    assert "service_code" in _error(site.get("services/999999.xml"), 404, xml=True)
    assert "service_code" in _error(site.post("requests.json", keyed | {"service_code": ""}), 400)
    # 噪声污染 requires its SOURCE attribute, from its list.
    noise = keyed | {"service_code": "0201", "description": "楼下商铺音响很吵"}
    assert "SOURCE" in _error(site.post("requests.xml", noise), 400, xml=True)
    assert "SOURCE" in _error(site.post("requests.json", noise | {"attribute[SOURCE]": "moon"}), 400)
    no_place = {k: v for k, v in keyed.items() if k not in ("lat", "long")}
    assert "location" in _error(site.post("requests.json", no_place), 400)
    assert "lat" in _error(site.post("requests.json", keyed | {"lat": "north"}), 400)
    assert "phone" in _error(site.post("requests.json", keyed | {"phone": "call me"}), 400)
    assert "description" in _error(site.post("requests.json", keyed | {"description": "长" * 4001}), 400)
    assert "form" in _error(httpx.post(f"{site.root}/requests.json", json=keyed, timeout=30), 400)
    # Dates: not a date, more than 90 days apart, the wrong way round.
    assert "start_date" in _error(site.get("requests.json", start_date="yesterday"), 400)
    assert "90" in _error(
        site.get("requests.xml", start_date="2026-01-01T00:00:00Z", end_date="2026-06-01T00:00:00Z"),
        400,
        xml=True,
    )
    assert "before" in _error(
        site.get("requests.json", start_date="2026-02-01T00:00:00Z", end_date="2026-01-01T00:00:00Z"), 400
    )
    assert "status" in _error(site.get("requests.json", status="pending"), 400)
    assert "page_size" in _error(site.get("requests.json", page_size="5000"), 400)
    assert "format" in _error(site.get("services.yaml"), 404)
    assert "was not found" in _error(site.get("requests/2099010100001.xml"), 404, xml=True)
    assert "token" in _error(site.get("tokens/abc.json"), 404)


# ----------------------------------------------------------------------------------- paging and filters
def test_paging_and_filters(site: Site) -> None:
    made = [
        site.report(
            f"广场舞音响太吵，第{i}次反映",
            "0201",
            **{"attribute[SOURCE]": "shop", "attribute[HOURS]": "晚上8点到10点"},
        )["service_request_id"]
        for i in range(5)
    ]
    assert len(set(made)) == 5
    pages = [
        site.get("requests.json", service_code="0201", page_size="2", page=str(p)).json()
        for p in (1, 2, 3, 4)
    ]
    seen = [r["service_request_id"] for page in pages for r in page]
    assert [len(p) for p in pages[:3]] == [2, 2, 1] and pages[3] == []
    assert len(seen) == len(set(seen)) == 5 and set(seen) == set(made)
    assert seen == sorted(seen, reverse=True)  # newest first
    assert all(r["service_code"] == "0201" for page in pages for r in page)
    # The attributes are in the ticket's text, by their names.
    assert "噪声来源：商铺" in pages[0][0]["description"]
    # A service_request_id list overrides the other filters.
    picked = site.get("requests.xml", service_request_id=",".join(made[:2]), service_code="010101")
    assert sorted(x.text for x in _xml(picked).iter("service_request_id")) == sorted(made[:2])  # type: ignore[type-var]
    assert site.get("requests.json", service_code="0201", status="closed").json() == []
    open_ones = {
        r["service_request_id"] for r in site.get("requests.json", service_code="0201", status="open").json()
    }
    assert set(made) <= open_ones
    # A window in the past holds none of them.
    old = site.get(
        "requests.json",
        service_code="0201",
        start_date="2020-01-01T00:00:00+08:00",
        end_date="2020-02-01T00:00:00+08:00",
    )
    assert old.json() == []


# ------------------------------------------------------------------- extensions, updates and the loop
def _staff(site: Site, username: str) -> httpx.Client:
    return site.server.login(username)


def test_extensions_updates_and_a_closed_request(site: Site) -> None:
    sent = site.report("和平街路灯杆倾斜，有倒塌危险")
    number = sent["service_request_id"]
    disp, cgj, sup = _staff(site, "dispatcher1"), _staff(site, "h_cgj"), _staff(site, "supervisor1")
    try:
        assert disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "CGJ"}).status_code == 200
        t = cgj.get(f"/api/v1/tickets/{number}").json()
        a = next(x["id"] for x in t["assignments"] if x["unit_code"] == "CGJ")
        assert cgj.post(f"/api/v1/assignments/{a}/sign", json={}).status_code == 200
        up = cgj.post(
            f"/api/v1/tickets/{number}/attachments", files={"file": ("pole.png", png(), "image/png")}
        )
        assert up.status_code == 201, up.text
        r = cgj.post(
            f"/api/v1/assignments/{a}/feedback",
            json={"text": "已到场加固灯杆，联系人电话13800001111", "attachment_ids": [up.json()["id"]]},
        )
        assert r.status_code == 200, r.text
        mid = site.get(f"requests/{number}.json", extensions="true").json()[0]
        assert mid["status"] == "open" and mid["status_notes"] == "办理中"
        assert mid["agency_responsible"] == "市城管局"
        assert mid["extended_attributes"]["status_extended"] == "in_progress"
        assert mid["media_url"] and mid["media_url"].endswith(f"/open311/v2/media/{up.json()['id']}")
        photo = httpx.get(mid["media_url"], timeout=30)
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"

        # The citizen adds an update through FixMyStreet; the same update twice is recorded once.
        form = {
            "api_key": site.key,
            "jurisdiction_id": JURISDICTION,
            "service_request_id": number,
            "update_id": "fms-update-7",
            "status": "OPEN",
            "updated_datetime": "2026-12-01T10:00:00+08:00",
            "description": "灯杆旁边的电线也松了，请一并处理",
            "email": "citizen@example.com",
        }
        r1, r2 = site.post("servicerequestupdates.xml", form), site.post("servicerequestupdates.json", form)
        assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
        update_id = _xml(r1).find("request_update/update_id").text  # type: ignore[union-attr]
        assert r2.json() == [{"update_id": update_id}]
        assert "found" in _error(
            site.post("servicerequestupdates.json", form | {"service_request_id": "2099010100001"}), 404
        )
        assert "update_id" in _error(
            site.post("servicerequestupdates.json", {k: v for k, v in form.items() if k != "update_id"}), 400
        )

        assert (
            cgj.post(
                f"/api/v1/assignments/{a}/request_close", json={"summary": "灯杆已加固，电线已整理"}
            ).status_code
            == 200
        )
        assert sup.post(f"/api/v1/tickets/{number}/review_accept", json={}).status_code == 200
    finally:
        for c in (disp, cgj, sup):
            c.close()
    done = site.get(f"requests/{number}.json", extensions="true").json()[0]
    assert done["status"] == "closed" and done["status_notes"] == "已办结"
    assert (
        done["extended_attributes"]["channel"] == "open311" and done["extended_attributes"]["closed_datetime"]
    )
    notes = [n["description"] for n in done["notes"]]
    assert notes[0] == "受理" and any(n.startswith("派单") for n in notes)
    assert sum("电线也松了" in n for n in notes) == 1
    assert any("灯杆已加固" in n for n in notes)
    assert all(set(n) == {"datetime", "description", "type"} for n in done["notes"])
    assert number in {r["service_request_id"] for r in site.get("requests.json", status="closed").json()}
    # Without extensions=true the request has the specification's fields only.
    plain = site.get(f"requests/{number}.json").json()[0]
    assert "notes" not in plain and "extended_attributes" not in plain
    # The XML form of the extensions.
    x = _xml(site.get(f"requests/{number}.xml", extensions="true")).find("request")
    assert x is not None and x.find("extended_attributes/channel").text == "open311"  # type: ignore[union-attr]
    assert [n.tag for n in x.find("notes")] == ["note"] * len(done["notes"])  # type: ignore[union-attr]

    feed = site.get("servicerequestupdates.json").json()
    mine = [u for u in feed if u["service_request_id"] == number]
    assert [u["update_id"] for u in mine if u["update_id"] == update_id] == [update_id]
    assert mine[-1]["status"] == "closed"
    assert {
        "update_id",
        "service_request_id",
        "status",
        "updated_datetime",
        "description",
        "media_url",
    } <= set(mine[0])
    xml_feed = _xml(site.get("servicerequestupdates.xml", jurisdiction_id=JURISDICTION))
    assert xml_feed.tag == "service_request_updates" and xml_feed[0].tag == "request_update"


# ---------------------------------------------------------------------------------------------- privacy
def test_personal_data_never_leaves_and_confidential_tickets_are_never_shown(site: Site) -> None:
    op = _staff(site, "operator1")
    try:

        def intake(**kw: Any) -> str:
            body = {
                "channel": "phone",
                "citizen_name": NAME,
                "citizen_phone": PHONE,
                "category_code": "010101",
            }
            r = op.post("/api/v1/tickets", json=body | kw)
            assert r.status_code == 201, r.text
            return str(r.json()["number"])

        shown = intake(
            detail=f"{NAME}来电：路灯坏了，回电{PHONE}，身份证110101199003071234，邮箱wxm@example.com",
            public_consent=True,
            address="幸福路3号2单元501室",
            lat=26.25812,
            lon=107.51711,
        )
        secret = intake(detail="举报：路灯电缆被盗卖", public_consent=True, confidential=True)
        private = intake(detail="路灯一直闪烁")
    finally:
        op.close()
    fmt_bodies = []
    for fmt in ("json", "xml"):
        for path, params in (
            (f"requests.{fmt}", {}),
            (f"requests.{fmt}", {"extensions": "true"}),
            (f"requests/{shown}.{fmt}", {"extensions": "true"}),
            (f"servicerequestupdates.{fmt}", {}),
        ):
            r = site.get(path, **params)
            assert r.status_code == 200, r.text
            fmt_bodies.append(r.text)
    everything = "\n".join(fmt_bodies)
    for personal in (
        PHONE,
        NAME,
        "110101199003071234",
        "wxm@example.com",
        "13800001111",
        "citizen@example.com",
        "王小明",
    ):
        assert personal not in everything, personal
    assert secret not in everything and private not in everything  # consented scope: only shown is listed
    assert shown in everything
    view = site.get(f"requests/{shown}.json").json()[0]
    assert "王**" in view["description"] and "***" in view["description"]
    assert view["address"] == "幸福路3号2****"  # masked: not taken in through Open311
    assert view["lat"] == pytest.approx(26.258) and view["long"] == pytest.approx(107.517)
    for number in (secret, private):
        assert "was not found" in _error(site.get(f"requests/{number}.json"), 404)
        assert site.get("requests.json", service_request_id=number).json() == []


# ------------------------------------------------------------------------------------------- admin page
def test_the_admin_page_lists_and_revokes_keys_with_an_audit_entry(site: Site) -> None:
    out = _cli(site.db_url, site.data_dir, "open311", "key", "--name", "city-app")
    key = out.strip().splitlines()[-1]  # the key is the last line
    assert key.startswith("o311_") and len(key) > 40 and "city-app" in out, out
    prefix = key[:11]
    assert site.report("小区门口路灯不亮", **{"api_key": key})["service_request_id"]
    admin = site.server.login("admin")
    try:
        page = admin.get("/admin/open311")
        assert page.status_code == 200 and prefix in page.text and "city-app" in page.text
        assert key not in page.text  # only its first characters
        row = re.search(
            rf'<tr id="key-(\d+)"><td>\d+</td><td>city-app</td><td><code>{re.escape(prefix)}', page.text
        )
        assert row is not None, page.text
        kid = row.group(1)
        csrf = admin.headers["X-CSRF-Token"]
        r = admin.post(f"/admin/open311/keys/{kid}/revoke", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code in (302, 303), r.text
        assert "已吊销" in admin.get("/admin/open311").text
        audit = admin.get("/api/v1/audit", params={"entity": "open311_key", "entity_id": kid}).json()
        items = audit["items"]
        assert any(e["action"] == "update" and e["after"]["revoked_at"] for e in items), audit
        assert all(e["after"] is None or e["after"].get("key_hash") in (None, "******") for e in items)
        # A service definition is set on the same page: bad JSON is refused next to it, a good one saved.
        bad = admin.post("/admin/open311/services/0201", data={"csrf_token": csrf, "attributes": "[{"})
        assert bad.status_code == 422 and "JSON" in bad.text
        saved = admin.post(
            "/admin/open311/services/0201",
            data={
                "csrf_token": csrf,
                "description": "噪声扰民",
                "keywords": "噪音,扰民,夜间",
                "attributes": ATTRIBUTES,
            },
            follow_redirects=False,
        )
        assert saved.status_code in (302, 303), saved.text
        assert site.get("services.json").json()[1]["keywords"] == "噪音,扰民,夜间"
        changes = admin.get("/api/v1/audit", params={"entity": "open311_service", "entity_id": "0201"}).json()
        assert any(e["action"] == "update" and e["actor"]["name"] == "admin" for e in changes["items"]), (
            changes
        )
    finally:
        admin.close()
    form = {
        "api_key": key,
        "service_code": "010101",
        "lat": "26.2",
        "long": "107.5",
        "description": "再报一次",
    }
    assert "not valid" in _error(site.post("requests.json", form), 403)
    # The other integration's key still works.
    assert site.report("另一处路灯不亮")["service_request_id"]


# --------------------------------------------------------------------------------- golden documents
def _shape(el: ET.Element) -> list[Any]:
    """The element names, in order, of an element's first item at each level (text ignored)."""
    out: list[Any] = []
    seen: set[str] = set()
    for child in el:
        if child.tag in seen:  # a repeated item: its shape is the first one's
            continue
        seen.add(child.tag)
        out.append((child.tag, _shape(child)) if len(child) else child.tag)
    return out


GOLDEN_CASES = {
    "discovery.xml": ("../discovery.xml", {}),
    "services.xml": ("services.xml", {}),
    "service_definition.xml": ("services/0201.xml", {}),
    "requests.xml": ("requests.xml", {"service_code": "010101"}),
    "errors.xml": ("requests.xml", {"status": "pending"}),
    "servicerequestupdates.xml": ("servicerequestupdates.xml", {}),
}


@pytest.mark.parametrize("golden", sorted(GOLDEN_CASES))
def test_documents_have_the_specification_shape(site: Site, golden: str) -> None:
    expected = ET.parse(GOLDEN / golden).getroot()
    path, params = GOLDEN_CASES[golden]
    if golden in ("requests.xml", "servicerequestupdates.xml"):
        site.report("路灯闪烁")  # at least one of each
    url = (
        f"{site.root}/{path}"
        if not path.startswith("..")
        else f"{site.server.base_url}/open311/discovery.xml"
    )
    got = ET.fromstring(httpx.get(url, params=params, timeout=30).content)
    assert got.tag == expected.tag
    assert _shape(got) == _shape(expected), (golden, _shape(got))


def test_post_and_token_documents_have_the_specification_shape(site: Site) -> None:
    r = site.post(
        "requests.xml",
        {
            "api_key": site.key,
            "service_code": "010101",
            "address_string": "和平街1号",
            "description": "井盖附近路灯坏了",
        },
    )
    got = _xml(r)
    assert _shape(got) == _shape(ET.parse(GOLDEN / "post_response.xml").getroot())
    token = got.findtext("request/token")
    t = _xml(site.get(f"tokens/{token}.xml"))
    assert _shape(t) == _shape(ET.parse(GOLDEN / "token.xml").getroot())
