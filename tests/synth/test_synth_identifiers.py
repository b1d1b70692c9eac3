"""Belgian identifiers: SSIN check digits and sex parity, NIHDI, CBE and CNK formats."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.synth.identifiers import (
    cbe_is_valid,
    cnk_is_well_formed,
    make_cbe,
    make_nihdi,
    make_ssin,
    nihdi_is_well_formed,
    ssin_birth_date,
    ssin_century_2000,
    ssin_is_valid,
    ssin_sex,
)
from app.synth.params import medicine_data, region_data

SYSTEMS = region_data()["systems"]


def test_known_ssin_examples() -> None:
    # 850101 901 -> 850101901 mod 97 = 12 -> 85; for 2003 the '2' prefix changes the check
    assert make_ssin(date(1985, 1, 1), 901) == "85010190185"
    assert ssin_is_valid("85010190185")
    assert not ssin_is_valid("85010190184")
    born_2003 = make_ssin(date(2003, 5, 7), 902)
    assert int(born_2003[9:]) == 97 - (2_030_507_902 % 97)
    assert ssin_century_2000(born_2003)


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(min_value=1, max_value=998),
)
def test_ssin_round_trip(birth: date, sequence: int) -> None:
    value = make_ssin(birth, sequence)
    assert len(value) == 11 and ssin_is_valid(value)
    assert ssin_birth_date(value, born_2000_or_later=birth.year >= 2000) == birth
    assert ssin_sex(value) == ("male" if sequence % 2 else "female")


def test_patient_ssins_are_valid_unique_synthetic_and_match_birth_and_sex(large: Any) -> None:
    seen = set()
    for resources in large.patients:
        p = resources[0]
        ident = p["identifier"][0]
        assert ident["system"] == SYSTEMS["ssin"]
        value = ident["value"]
        assert ssin_is_valid(value), value
        birth = date.fromisoformat(p["birthDate"])
        assert ssin_century_2000(value) == (birth.year >= 2000)
        assert ssin_birth_date(value, born_2000_or_later=birth.year >= 2000) == birth
        assert ssin_sex(value) == p["gender"]
        assert 900 <= int(value[6:9]) <= 998
        seen.add(value)
    assert len(seen) == len(large.patients)


def test_nihdi_and_cbe_numbers(large: Any) -> None:
    nihdi_values = []
    for r in large.shared:
        for ident in r.get("identifier", []):
            if ident["system"] == SYSTEMS["nihdi"]:
                assert nihdi_is_well_formed(ident["value"]), ident
                assert r["id"] == f"nihdi-{ident['value']}"
                nihdi_values.append((r["resourceType"], ident["value"]))
            elif ident["system"] == SYSTEMS["cbe"]:
                assert cbe_is_valid(ident["value"]), ident
    assert len(nihdi_values) == len(set(nihdi_values))
    assert make_nihdi("1", 123, "004") == "19012394004"
    assert cbe_is_valid(make_cbe(17)) and not cbe_is_valid("0900001799")


@pytest.mark.parametrize(
    "item", list(medicine_data()["catalogue"].values()), ids=lambda i: i["atc"]
)
def test_cnk_codes_are_well_formed_and_synthetic(item: dict[str, Any]) -> None:
    assert cnk_is_well_formed(item["cnk"]) and item["cnk"].startswith("99")


def test_cnk_codes_are_unique() -> None:
    cnks = [i["cnk"] for i in medicine_data()["catalogue"].values()]
    assert len(cnks) == len(set(cnks))
