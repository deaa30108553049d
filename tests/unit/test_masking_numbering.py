"""PII masking per role and ticket numbers."""

from __future__ import annotations

from datetime import UTC, datetime

from minsheng.domain.masking import mask_address, mask_id_number, mask_name, mask_phone, pii_view
from minsheng.domain.numbering import format_ticket_number, hash_query_code, new_query_code, numbering_day
from minsheng.domain.roles import Role


def test_masks() -> None:
    assert mask_phone("13800138000") == "138****8000"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("李") == "李*"
    assert mask_id_number("11010519491231002X") == "1101**********002X"
    assert mask_address("民声市东城区幸福路街道阳光花园3幢2单元") == "民声市东城区****"
    assert mask_phone(None) is None and mask_phone("") == ""


def test_who_sees_what() -> None:
    for role in (Role.OPERATOR, Role.DISPATCHER, Role.SUPERVISOR, Role.FOLLOWUP):
        assert pii_view(role).full
    for role in (Role.LEADER, Role.ADMIN, Role.INTEGRATION, Role.CITIZEN):
        assert not pii_view(role).full
    assert pii_view(Role.HANDLER, viewer_unit_id=3, assigned_unit_ids=frozenset({3})).full
    assert not pii_view(Role.HANDLER, viewer_unit_id=4, assigned_unit_ids=frozenset({3})).full
    assert not pii_view(
        Role.HANDLER, viewer_unit_id=3, assigned_unit_ids=frozenset({3}), confidential=True
    ).full
    assert pii_view(Role.CITIZEN, is_submitter=True).full


def test_numbers_follow_the_city_day() -> None:
    # 2026-11-20 17:00 UTC is already 21 November in Beijing time.
    assert numbering_day(datetime(2026, 11, 20, 17, 0, tzinfo=UTC)).isoformat() == "2026-11-21"
    assert format_ticket_number(numbering_day(datetime(2026, 11, 21, 1, tzinfo=UTC)), 1) == "2026112100001"
    code = new_query_code()
    assert len(code) == 10 and hash_query_code(code) == hash_query_code(code.lower())
