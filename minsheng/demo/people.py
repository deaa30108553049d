"""Fake people for the demo city: names, mobile numbers, resident ID numbers and callers.

Names and number prefixes come from ``data/people.toml``; ID numbers have a real date, sex digit and check
digit (GB 11643) around a fake region and sequence, so they pass validation without being anyone's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from minsheng.demo.tables import load, words

__all__ = [
    "Citizen",
    "fake_id_number",
    "fake_mobile",
    "fake_name",
    "generate_citizen",
    "id_check_digit",
    "is_valid_id_number",
]

# ISO 7064 MOD 11-2 weights of ID digits 1..17, and the check character by remainder.
_ID_WEIGHTS = (7, 9, 1, 0, 8, 0, 4, 2, 5, 10, 3, 6, 9, 8, 4, 2, 1)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class Citizen:
    name: str
    phone: str
    id_number: str


@dataclass(frozen=True)
class _People:
    surnames: str  # one character each, repeated by frequency
    given_male: str
    given_female: str
    id_regions: tuple[str, ...]
    mobile_prefixes: tuple[str, ...]


@cache
def _people() -> _People:
    d = load("people")
    return _People(
        d["surnames"], d["given_male"], d["given_female"], words(d["id_regions"]), words(d["mobile_prefixes"])
    )


def fake_name(rng: random.Random, male: bool | None = None) -> str:
    """A common-looking two- or three-character Chinese name."""
    if male is None:
        male = rng.random() < 0.5
    people = _people()
    pool = people.given_male if male else people.given_female
    given = rng.choice(pool) if rng.random() < 0.35 else rng.choice(pool) + rng.choice(pool)
    return rng.choice(people.surnames) + given


def fake_mobile(rng: random.Random) -> str:
    """An 11-digit mobile number starting 13/15/18/19."""
    return rng.choice(_people().mobile_prefixes) + f"{rng.randint(0, 99_999_999):08d}"


def id_check_digit(first17: str) -> str:
    """The 18th character of a resident ID number (GB 11643, ISO 7064 MOD 11-2)."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_valid_id_number(id_number: str) -> bool:
    return (
        len(id_number) == 18
        and id_number[:17].isdigit()
        and id_check_digit(id_number[:17]) == id_number[17].upper()
    )


def fake_id_number(rng: random.Random, male: bool | None = None) -> str:
    """An 18-character resident ID with a real date, sex digit and check digit (fake region and sequence)."""
    if male is None:
        male = rng.random() < 0.5
    year = rng.randint(1940, 2006)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    seq = rng.randint(0, 499) * 2 + (1 if male else 0)  # the 17th digit is odd for men, even for women
    body = f"{rng.choice(_people().id_regions)}{year:04d}{month:02d}{day:02d}{seq:03d}"
    return body + id_check_digit(body)


def generate_citizen(rng: random.Random) -> Citizen:
    """A caller. A quarter give only their surname (王先生, 李女士), as callers often do."""
    male = rng.random() < 0.5
    name = fake_name(rng, male)
    if rng.random() < 0.25:
        name = name[0] + ("先生" if male else "女士")
    return Citizen(name, fake_mobile(rng), fake_id_number(rng, male))
