"""The city's own configuration kept as named settings (issue 17 §3): the preset applied last and 黔西's
repeated-failure ladder (period, levels, what counts as a failure), edited on the admin pages, audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base


class CitySetting(Base):
    """One named setting (``clock_preset``, ``repeated_failures``) and its JSON value."""

    __tablename__ = "city_settings"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime]
