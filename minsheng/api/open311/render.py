"""GeoReport's two formats: XML (the specification's, rendered with the standard library's `xml.etree`) and
JSON (the XML's mechanical mapping with the root dropped: a list is a bare array).

`xml.etree` only builds and serialises here: nothing this module renders is parsed, and requests arrive as
forms, so no XML from outside is ever read (its parser's entity issues do not arise). It escapes text and
writes UTF-8, which is all GeoReport's documents need.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from fastapi.responses import Response

from minsheng.services.open311_keys import Open311Error

XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
FORMATS = ("json", "xml")
# The element of each item of a list, by the list's name (GeoReport and mySociety's names).
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "service_request_updates": "request_update",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "notes": "note",
    "media_urls": "media_url",
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(parent: ET.Element, name: str, value: Any) -> None:
    el = ET.SubElement(parent, name)
    if value is None:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _fill(el, k, v)
    elif isinstance(value, list):
        for item in value:
            _fill(el, ITEMS.get(name, "item"), item)
    else:
        el.text = _text(value)


def to_xml(root: str, data: Any) -> bytes:
    """`data` under `<root>`: a list as items named after the root (`ITEMS`), a dict as child elements."""
    top = ET.Element(root)
    if isinstance(data, list):
        for item in data:
            _fill(top, ITEMS[root], item)
    else:
        for k, v in data.items():
            _fill(top, k, v)
    return ET.tostring(top, encoding="utf-8", xml_declaration=True)


def answer(
    fmt: str, root: str, data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, data), status_code=status, media_type=XML_TYPE, headers=headers)
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), status_code=status, media_type=JSON_TYPE, headers=headers)


def error(fmt: str, e: Open311Error) -> Response:
    headers = {"Retry-After": str(e.retry_after)} if e.retry_after is not None else None
    return answer(fmt, "errors", [{"code": e.status, "description": e.description}], e.status, headers)


def fmt_of(path: str) -> str:
    """The format a path asks for (its extension); JSON when it names none we serve."""
    return "xml" if path.rsplit("/", 1)[-1].lower().endswith(".xml") else "json"
