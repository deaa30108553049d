"""A small city for tests: two districts, streets, units, one user per role (password 'secret-pass')."""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from minsheng.services import org

PASSWORD = "secret-pass"
_HASH = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)


def small_city(session: Session, now: datetime) -> None:
    org.add_area(session, "C", "民声市", "city")
    org.add_area(session, "C01", "东城区", "district", "C", ["东城"])
    org.add_area(session, "C02", "西城区", "district", "C", ["西城"])
    org.add_area(session, "C0101", "幸福路街道", "street", "C01", ["幸福路"])
    org.add_area(session, "C0201", "和平街道", "street", "C02", ["和平"])
    org.add_category(session, "01", "城乡建设")
    org.add_category(session, "0101", "市政设施", "01")
    org.add_category(session, "010101", "路灯损坏", "0101")
    org.add_category(session, "02", "环境保护")
    org.add_category(session, "0201", "噪声污染", "02")
    org.add_unit(session, "CENTRE", "市12345热线中心", "centre", duty_tier=1)
    org.add_unit(session, "ZJJ", "市住建局", "department", duty_tier=2)
    org.add_unit(session, "CGJ", "市城管局", "department", duty_tier=2)
    org.add_unit(session, "HBJ", "市生态环境局", "department", duty_tier=2)
    org.add_unit(session, "DC", "东城区政府", "district_office", area_code="C01")
    org.add_unit(session, "XFL", "幸福路街道办", "street_office", parent_code="DC", area_code="C0101")
    org.add_unit(session, "P110", "110指挥中心", "external")
    users = [
        ("operator1", "话务员一", "operator", "CENTRE"),
        ("dispatcher1", "派单员一", "dispatcher", "CENTRE"),
        ("supervisor1", "督办员一", "supervisor", "CENTRE"),
        ("followup1", "回访员一", "followup", "CENTRE"),
        ("leader1", "市领导", "leader", None),
        ("admin", "管理员", "admin", None),
        ("h_zjj", "住建局承办人", "handler", "ZJJ"),
        ("h_cgj", "城管局承办人", "handler", "CGJ"),
        ("h_hbj", "环境局承办人", "handler", "HBJ"),
        ("h_xfl", "街道承办人", "handler", "XFL"),
    ]
    for username, name, role, unit in users:
        org.add_user(session, username, name, role, None, now, unit, password_hash=_HASH)


def png(width: int = 4, height: int = 3, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A real (decodable) PNG image: uploads are re-encoded with Pillow, which refuses a bare signature."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()
