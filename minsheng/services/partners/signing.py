"""Reading a partner's signed message: which partner, is the signature good, what does the body say.

Every inbound call (transfer, acknowledgement, result) is checked here before anything is stored: an unknown or
disabled partner is 404, a missing or wrong signature 401, a body that is not the expected JSON 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from minsheng.notify.partner import verify
from minsheng.services.errors import Invalid, Unauthenticated
from minsheng.services.partners.registry import get_partner
from minsheng.storage.partner_tables import Partner

MAX_BODY = 256 * 1024
M = TypeVar("M", bound=BaseModel)


def signed_partner(
    session: Session, code: str, headers: Mapping[str, str], body: bytes, now: datetime, tolerance: int
) -> Partner:
    """The active partner ``code`` whose secret signs ``body``; NotFound or Unauthenticated otherwise."""
    partner = get_partner(session, code, active_only=True)
    refused = verify(partner.secret, headers, body, now, tolerance)
    if refused is not None:
        raise Unauthenticated(f"partner signature refused: {refused}")
    return partner


def parse(model: type[M], body: bytes) -> M:
    if len(body) > MAX_BODY:
        raise Invalid(f"body larger than {MAX_BODY} bytes")
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        errors = [
            {"field": ".".join(str(x) for x in err.get("loc", ())) or "body", "message": err.get("msg", "")}
            for err in e.errors()[:10]
        ]
        raise Invalid("invalid partner message", errors=errors) from None
