"""Validated inputs of the use cases (shared by the API, the pages, the CLI and the importers)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from minsheng.domain.states import Channel, Kind, Rating, TransferTarget, Urgency

MAX_DETAIL = 10_000
PHONE_RE = re.compile(r"^\+?[0-9][0-9\- ]{2,19}$")
ID_NUMBER_RE = re.compile(r"^[0-9]{17}[0-9Xx]$|^[0-9]{15}$")
CODE_RE = r"^[A-Za-z0-9_.\-]{1,32}$"

Reason = Annotated[str, Field(min_length=2, max_length=500)]
Note = Annotated[str | None, Field(default=None, max_length=2000)]
UnitCode = Annotated[str, Field(pattern=CODE_RE)]
# Row ids are refused here when no id column could hold them, before the database driver fails on them: tickets,
# assignments, events, attachments and notifications have 64-bit ids, the organisation, clock, knowledge base,
# triage tables and extensions 32-bit ones (PostgreSQL says "integer out of range" beyond).
MAX_ID = 2**63 - 1
MAX_SMALL_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
SmallId = Annotated[int, Field(ge=1, le=MAX_SMALL_ID)]


def utc_representable(v: datetime | None) -> datetime | None:
    """A time that can be stored: columns hold UTC, and 0001-01-01T00:00+14:00 cannot be moved there."""
    try:
        if v is not None:
            v.astimezone(UTC)
    except OverflowError:
        raise ValueError("date and time out of range") from None
    return v


Instant = Annotated[AwareDatetime, AfterValidator(utc_representable)]


def has_nul(value: Any) -> bool:
    """Whether text anywhere in a (possibly nested, possibly very deep) JSON value holds a NUL character."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return False


# Characters no person types into a form and that make stored text lie about itself: the bidirectional overrides
# and isolates (U+202A–U+202E, U+2066–U+2069: "‮gpj.exe" reads as "exe.jpg") and the C0/C1 controls. Long texts
# keep newline, carriage return and tab; one-line texts (titles, names, addresses) refuse them too. NUL has its
# own message (`Checked`).
_DIRECTION = "\u202a-\u202e\u2066-\u2069"
_TEXT_BAD = re.compile(f"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_DIRECTION}]")
_LINE_BAD = re.compile(f"[\x01-\x1f\x7f-\x9f{_DIRECTION}]")


def clean_text(v: str, *, one_line: bool = False) -> str:
    """The text if it holds no control or direction-override character, else a 422 that names the first one."""
    hit = (_LINE_BAD if one_line else _TEXT_BAD).search(v)
    if hit is not None:
        raise PydanticCustomError(
            "text_control",
            "不能包含控制字符或文字方向控制字符（U+{code}，第 {pos} 个字符）; control and direction-override "
            "characters are not allowed (U+{code} at character {pos})",
            {"code": f"{ord(hit.group()):04X}", "pos": hit.start() + 1},
        )
    return v


def _one_line(v: str | None) -> str | None:
    return v if v is None else clean_text(v, one_line=True)


# A one-line text (a title, a name, an address): the validator type of every such field.
Line = AfterValidator(_one_line)
Text200 = Annotated[str, Field(min_length=1, max_length=200), Line]


def _clean_strings(value: Any) -> Any:
    """Every text in a (possibly nested) input value checked by `clean_text`, iteratively."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            clean_text(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return value


class Checked(BaseModel):
    """Input that will be stored: no NUL characters in any text (PostgreSQL cannot store them in text)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        if has_nul(v):
            raise ValueError("text must not contain NUL (\\x00) characters")
        return v


class Strict(Checked):
    """Input of a use case: no unknown fields, and no control or direction-override characters in any text
    (`clean_text`; the one-line fields are `Line`s)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_controls(cls, v: Any) -> Any:
        return _clean_strings(v)


class IntakeRequest(Strict):
    """A citizen's request as taken by an operator, a channel adapter or the portal."""

    channel: Channel = Channel.PHONE
    kind: Kind | None = None
    urgency: Urgency | None = None
    category_code: str | None = Field(default=None, pattern=CODE_RE)
    title: Annotated[str | None, Line] = Field(default=None, max_length=200)
    detail: str = Field(min_length=1, max_length=MAX_DETAIL)
    address: Annotated[str | None, Line] = Field(default=None, max_length=300)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    area_code: str | None = Field(default=None, pattern=CODE_RE)
    citizen_name: Annotated[str | None, Line] = Field(default=None, max_length=64)
    citizen_phone: str | None = Field(default=None, max_length=32)
    citizen_id_number: str | None = Field(default=None, max_length=32)
    confidential: bool = False
    public_consent: bool = False
    external_id: Annotated[str | None, Line] = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=128)

    @field_validator("detail")
    @classmethod
    def _detail_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("detail must not be blank")
        return v

    @field_validator("lat", "lon")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("coordinate must be a finite number")
        return v

    @field_validator("citizen_phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v and not PHONE_RE.match(v):
            raise ValueError("phone must be digits, optionally with +, - or spaces")
        return v

    @field_validator("citizen_id_number")
    @classmethod
    def _id_number(cls, v: str | None) -> str | None:
        if v and not ID_NUMBER_RE.match(v):
            raise ValueError("ID number must have 18 characters (17 digits and a digit or X) or 15 digits")
        return v.upper() if v else v

    @model_validator(mode="after")
    def _both_coordinates(self) -> IntakeRequest:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self

    def fingerprint_fields(self) -> dict[str, object]:
        return self.model_dump(exclude={"idempotency_key"}, mode="json")


class AnswerDirectly(Strict):
    answer: str = Field(min_length=1, max_length=5000)


class Transfer(Strict):
    target: TransferTarget
    note: Note = None


class Dispatch(Strict):
    lead_unit: UnitCode
    assist_units: list[UnitCode] = Field(default_factory=list, max_length=20)
    first_receiver: bool = False
    note: Note = None

    @model_validator(mode="after")
    def _distinct(self) -> Dispatch:
        if self.lead_unit in self.assist_units:
            raise ValueError("the lead unit cannot also assist")
        if len(set(self.assist_units)) != len(self.assist_units):
            raise ValueError("assist units must be distinct")
        return self


class Redispatch(Dispatch):
    reason: Reason


class LinkTicket(Strict):
    ticket: str = Field(pattern=r"^\d{8,20}$", description="number of the other ticket")
    note: Note = None


class Conference(Strict):
    """会商: the units that met and what they decided."""

    participants: list[UnitCode] = Field(default_factory=list, max_length=30)
    decision: str = Field(min_length=1, max_length=5000)


class WithReason(Strict):
    reason: Reason


class WithNote(Strict):
    note: Note = None


class RequestExtension(Strict):
    hours: float = Field(gt=0, le=24 * 90)
    reason: Reason


class DecideExtension(Strict):
    extension_id: SmallId | None = None
    approve: bool
    # Kept with the extension (500 characters), not only in the timeline.
    note: Annotated[str | None, Field(default=None, max_length=500)] = None


class FollowUp(Strict):
    rating: Rating
    comment: Note = None
    method: str = Field(default="phone", pattern=r"^(phone|sms|wechat|app|visit)$")


class Rate(Strict):
    rating: Rating
    comment: Note = None


class Feedback(Strict):
    text: str = Field(min_length=1, max_length=5000)
    attachment_ids: list[Id] = Field(default_factory=list, max_length=20)


class RequestClose(Strict):
    summary: str = Field(min_length=1, max_length=5000)


class Contact(Strict):
    method: str = Field(default="phone", pattern=r"^(phone|sms|visit|wechat)$")
    note: Note = None
