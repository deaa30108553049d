"""Human-readable ticket numbers (date + daily sequence, e.g. 2026112100001) and citizens' query codes."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import date, datetime
from zoneinfo import ZoneInfo

CITY_TZ = ZoneInfo("Asia/Shanghai")
NUMBER_RE = re.compile(r"^\d{8}\d{5,}$")
QUERY_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out over the phone
# 10 of 32 characters: 2^50 codes, so guessing one is hopeless even without the public rate limits. Codes
# given before (6 characters, 2^30) are stored as hashes like these and keep working.
QUERY_CODE_LENGTH = 10


def numbering_day(now: datetime) -> date:
    """Ticket numbers follow the city's calendar day, not UTC."""
    return now.astimezone(CITY_TZ).date()


def format_ticket_number(day: date, sequence: int) -> str:
    return f"{day:%Y%m%d}{sequence:05d}"


def new_query_code(length: int = QUERY_CODE_LENGTH) -> str:
    return "".join(secrets.choice(QUERY_CODE_ALPHABET) for _ in range(length))


def hash_query_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()
