"""Tables of the Open311 GeoReport v2 interface (issue 16): the integrations' API keys and the service definitions
an administrator adds to categories (description, keywords, the attributes a request must carry).

A service is a category (its code is the `service_code`); a category without a row here is a service with no
attributes. Keys are stored as their SHA-256 only; the key itself is shown once, when it is issued.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base


class Open311Key(Base):
    """The API key of one integration (a FixMyStreet instance, a city app …). Revoking keeps the row."""

    __tablename__ = "open311_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the key, so that an administrator can tell keys apart without the key itself.
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Open311Service(Base):
    """What GeoReport says of one category beyond its name: a description, keywords and the attribute
    definitions (GeoReport's `attributes[]`, validated by `services.open311_catalogue.AttributeDef`)."""

    __tablename__ = "open311_services"
    service_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(500))
    keywords: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]


__all__ = ["Open311Key", "Open311Service"]
