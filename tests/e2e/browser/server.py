"""A real server for browser tests and screenshots: uvicorn in a thread on a free loopback port, over a temp
SQLite database seeded with `tests.factories.small_city` (plus district/street polygons so the maps draw).
"""

from __future__ import annotations

import shutil
import socket
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import select

from minsheng.asgi import create_app
from minsheng.config import Settings
from minsheng.domain.clock import SystemClock
from minsheng.storage.db import Database, open_database
from minsheng.storage.migrate import upgrade
from minsheng.storage.models import Area
from tests.factories import PASSWORD, small_city

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "PASSWORD", "Running", "png", "running_server"]

# Rectangles in [lon, lat], counter-clockwise: two districts side by side, one street inside each.
POLYGONS = {
    "C01": [[116.30, 39.85], [116.40, 39.85], [116.40, 39.95], [116.30, 39.95], [116.30, 39.85]],
    "C02": [[116.40, 39.85], [116.50, 39.85], [116.50, 39.95], [116.40, 39.95], [116.40, 39.85]],
    "C0101": [[116.32, 39.87], [116.38, 39.87], [116.38, 39.93], [116.32, 39.93], [116.32, 39.87]],
    "C0201": [[116.42, 39.87], [116.48, 39.87], [116.48, 39.93], [116.42, 39.93], [116.42, 39.87]],
}


@dataclass
class Running:
    url: str
    db: Database
    data_dir: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def png(width: int = 64, height: int = 48, rgb: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A real (decodable) PNG of one colour, so pages show an image rather than a broken icon."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def seed(db: Database) -> None:
    with db.write_sessions() as session, session.begin():
        small_city(session, SystemClock().now())
        for area in session.scalars(select(Area).where(Area.code.in_(list(POLYGONS)))):
            area.polygon = {"type": "Polygon", "coordinates": [POLYGONS[area.code]]}
            ring = POLYGONS[area.code]
            area.lon = sum(p[0] for p in ring[:4]) / 4
            area.lat = sum(p[1] for p in ring[:4]) / 4


@contextmanager
def running_server() -> Iterator[Running]:
    tmp = Path(tempfile.mkdtemp(prefix="minsheng-browser-"))
    url = f"sqlite:///{tmp / 'minsheng.db'}"
    upgrade(url)
    db = open_database(url)
    seed(db)
    settings = Settings(database_url=url, data_dir=tmp / "data", embedded_worker=False, environment="test")
    app = create_app(settings, db=db)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield Running(url=f"http://127.0.0.1:{port}", db=db, data_dir=tmp)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
