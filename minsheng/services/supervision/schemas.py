"""Inputs of the supervision steps, shared by the JSON API and the console's forms (validated the same way)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from minsheng.services.schemas import Strict

TicketNumber = Annotated[str, Field(pattern=r"^\d{8,20}$")]
Text = Annotated[str, Field(min_length=2, max_length=2000)]
Note = Annotated[str | None, Field(default=None, max_length=500)]


class OrderIn(Strict):
    """A 督办: one ticket (the unit that holds it), or several tickets of the named unit."""

    tickets: list[TicketNumber] = Field(min_length=1, max_length=50)
    reason: Text
    hours: float = Field(gt=0, le=720, description="hours the unit has to answer in writing")
    level: Literal["normal", "key", "listed"] = "normal"
    unit: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]{1,32}$")


class AnswerIn(Strict):
    answer: Text


class RemindIn(Strict):
    note: Note = None


class InstructionIn(Strict):
    text: Text


class DecisionIn(Strict):
    outcome: Literal["reopen", "explained", "referred"]
    justification: Annotated[str | None, Field(default=None, max_length=2000)] = None
    referred_to: Annotated[str | None, Field(default=None, max_length=100)] = None


class ApprovalIn(Strict):
    approve: bool
    note: Note = None
