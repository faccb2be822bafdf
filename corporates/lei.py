"""ISO 17442 Legal Entity Identifiers: 18 alphanumerics and 2 check digits (ISO 7064 MOD 97-10).

Letters count as two digits (A=10 … Z=35), as in an IBAN; the whole number
modulo 97 must be 1. The check digits of an 18-character prefix are
``98 - (prefix + "00") mod 97``.
"""

from __future__ import annotations

import re

from config.errors import DomainError

_LEI_RE = re.compile(r"^[0-9A-Z]{18}[0-9]{2}$")


class InvalidLei(DomainError):
    code = "invalid_lei"
    title = "The LEI is not a valid ISO 17442 identifier."
    http_status = 400


def mod97(text: str) -> int:
    """ISO 7064 MOD 97-10 over digits and upper-case letters (A=10 … Z=35)."""
    return int("".join(str(int(char, 36)) for char in text)) % 97


def lei_check_digits(prefix: str) -> str:
    """The two check digits that complete an 18-character LEI prefix."""
    prefix = prefix.strip().upper()
    if not re.fullmatch(r"[0-9A-Z]{18}", prefix):
        raise InvalidLei("An LEI prefix is 18 letters or digits.")
    return f"{98 - mod97(prefix + '00'):02d}"


def lei_normalise(value: str) -> str:
    """Upper-case, without the spaces people paste in; raise ``InvalidLei`` unless valid."""
    lei = re.sub(r"\s+", "", value or "").upper()
    if not _LEI_RE.fullmatch(lei):
        raise InvalidLei("An LEI is 20 characters: 18 letters or digits, then 2 check digits.")
    if mod97(lei) != 1:
        raise InvalidLei("The LEI's check digits do not match (ISO 7064 MOD 97-10).")
    return lei
