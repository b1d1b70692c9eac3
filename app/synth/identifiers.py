"""Belgian identifiers, well-formed and recognisably synthetic.

- SSIN (INSZ/NISS, national number): ``YYMMDDSSSCC``; the sequence ``SSS`` is odd for men and even
  for women; ``CC = 97 - (YYMMDDSSS mod 97)``, with a ``2`` prefixed to the nine digits for births
  from 2000 on. We only use sequences 900-998 (see ``leuven.json``): real numbers use 001-998, so
  ours are well-formed but not impossible, and must never leave test systems.
- NIHDI (RIZIV/INAMI) numbers: 11 digits. Ours are ``P 9SSSS CC QQQ``: profession digit, a serial
  starting with 9, two check digits ``97 - (first six digits mod 97)`` by our own rule (we do not
  claim it is NIHDI's), and a qualification-like suffix.
- CBE (KBO/BCE) enterprise numbers: 10 digits starting with 0 or 1, ``check = 97 - (first eight
  digits mod 97)``; ours start with ``09``.
- CNK product codes: 7 digits; ours start with ``99`` and are listed in ``medicines.json``.
"""

from __future__ import annotations

from datetime import date


def ssin_check(birth: date, sequence: int) -> int:
    """The two SSIN check digits for a birth date and a sequence number."""
    base = int(f"{birth:%y%m%d}{sequence:03d}")
    if birth.year >= 2000:
        base += 2_000_000_000
    return 97 - base % 97


def make_ssin(birth: date, sequence: int) -> str:
    """A well-formed SSIN (11 digits) for a birth date and a sequence number 1-998."""
    if not 1 <= sequence <= 998:
        raise ValueError(f"SSIN sequence out of range: {sequence}")
    return f"{birth:%y%m%d}{sequence:03d}{ssin_check(birth, sequence):02d}"


def ssin_is_valid(value: str) -> bool:
    """True when ``value`` has 11 digits and check digits valid for a 19xx or 20xx birth."""
    if len(value) != 11 or not value.isdigit():
        return False
    base, check = int(value[:9]), int(value[9:])
    return check in (97 - base % 97, 97 - (base + 2_000_000_000) % 97)


def ssin_birth_date(value: str, *, born_2000_or_later: bool) -> date:
    """The birth date encoded in an SSIN (the century is not in the number itself)."""
    century = 2000 if born_2000_or_later else 1900
    return date(century + int(value[0:2]), int(value[2:4]), int(value[4:6]))


def ssin_century_2000(value: str) -> bool:
    """True when the check digits follow the rule for births from 2000 on."""
    base, check = int(value[:9]), int(value[9:])
    return check == 97 - (base + 2_000_000_000) % 97


def ssin_sex(value: str) -> str:
    """``male`` for an odd sequence, ``female`` for an even one."""
    return "male" if int(value[6:9]) % 2 else "female"


def make_nihdi(profession_digit: str, serial: int, suffix: str) -> str:
    """A synthetic 11-digit NIHDI number; ``serial`` 0-9999 becomes ``9SSSS``."""
    head = f"{profession_digit}9{serial:04d}"
    return f"{head}{97 - int(head) % 97:02d}{suffix}"


def nihdi_is_well_formed(value: str) -> bool:
    """11 digits whose digits 7-8 are our check over the first six."""
    return len(value) == 11 and value.isdigit() and int(value[6:8]) == 97 - int(value[:6]) % 97


def make_cbe(serial: int) -> str:
    """A synthetic 10-digit enterprise number ``09SSSSSS CC``."""
    head = f"09{serial:06d}"
    return f"{head}{97 - int(head) % 97:02d}"


def cbe_is_valid(value: str) -> bool:
    """10 digits starting with 0 or 1 and a valid mod-97 check."""
    return (
        len(value) == 10
        and value.isdigit()
        and value[0] in "01"
        and int(value[8:]) == 97 - int(value[:8]) % 97
    )


def cnk_is_well_formed(value: str) -> bool:
    """CNK codes are 7 digits."""
    return len(value) == 7 and value.isdigit()
