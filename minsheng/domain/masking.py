"""Masking of personal data (name, phone, ID number, address) for roles that do not need it."""

from __future__ import annotations

from dataclasses import dataclass

from minsheng.domain.roles import Role


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    if len(phone) >= 7:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) > 7 else phone[:3] + "****"
    return "*" * len(phone)


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_id_number(id_number: str | None) -> str | None:
    if not id_number:
        return id_number
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_address(address: str | None, keep: int = 6) -> str | None:
    """Keep the district/street part of an address, hide the house number detail."""
    if not address:
        return address
    if len(address) <= keep:
        return address[:2] + "*" * (len(address) - 2) if len(address) > 2 else "*" * len(address)
    return address[:keep] + "****"


@dataclass(frozen=True, slots=True)
class PiiView:
    """What a viewer may see of one ticket's personal data."""

    full: bool


def pii_view(
    role: Role,
    *,
    viewer_unit_id: int | None = None,
    assigned_unit_ids: frozenset[int] = frozenset(),
    confidential: bool = False,
    is_submitter: bool = False,
) -> PiiView:
    """Decide whether a viewer sees a ticket's personal data unmasked.

    Operators, dispatchers, supervisors and follow-up staff need the contact to do their job; a handling unit
    needs it only for tickets assigned to it, and not for confidential (保密) ones, which it handles through the
    centre. Leaders, admins, integrations and the public see masked data.
    """
    if is_submitter:
        return PiiView(full=True)
    if role in (Role.OPERATOR, Role.DISPATCHER, Role.SUPERVISOR, Role.FOLLOWUP):
        return PiiView(full=True)
    if role is Role.HANDLER and viewer_unit_id in assigned_unit_ids and not confidential:
        return PiiView(full=True)
    return PiiView(full=False)


# What a screen that every staff member may look at (the big screen's feed) shows instead of a confidential
# ticket's title.
CONFIDENTIAL_TITLE = "保密件"
