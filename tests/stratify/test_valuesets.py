"""The shared ValueSet library under fhir_profiles/valuesets/: valid R4, named as agreed, explicit
codes only, unions equal to their parts, and covering the codes the synthetic generator and
Synthea send."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.fhir.definitions import PROFILES
from app.fhir.validation import validate_resource
from app.stratify.codes import shipped_value_sets
from app.stratify.map import load_map
from tests.conftest import SHARED

FOLDER = PROFILES / "valuesets"
BASE = "https://phm-fhir.be/fhir/ValueSet/"
NAMES = {
    "type-2-diabetes",
    "type-1-diabetes",
    "prediabetes",
    "hypertension",
    "dyslipidaemia",
    "ischaemic-heart-disease",
    "stroke-tia",
    "peripheral-arterial-disease",
    "ascvd",
    "heart-failure",
    "atrial-fibrillation",
    "chronic-kidney-disease",
    "copd",
    "depression",
    "dementia",
    "frailty",
    "obesity",
    "diabetes-complications",
    "hba1c",
    "ldl-cholesterol",
    "blood-pressure-panel",
    "systolic-bp",
    "diastolic-bp",
    "egfr",
    "uacr",
    "bmi",
    "smoking-status",
    "metformin",
    "sulfonylureas",
    "dpp4-inhibitors",
    "glp1-agonists",
    "sglt2-inhibitors",
    "insulins",
    "oral-glucose-lowering",
    "statins",
    "antiplatelets",
    "anticoagulants",
    "antithrombotics",
    "ace-inhibitors-arbs",
    "beta-blockers",
    "calcium-channel-blockers",
    "diuretics",
    "medication-review",
}
SYSTEMS = {
    "http://snomed.info/sct",
    "http://hl7.org/fhir/sid/icpc-2",
    "http://hl7.org/fhir/sid/icd-10",
    "http://loinc.org",
    "http://www.whocc.no/atc",
    "http://www.nlm.nih.gov/research/umls/rxnorm",
}


def codes(name: str) -> set[tuple[str, str]]:
    vs = shipped_value_sets()[BASE + name]
    return {(inc["system"], c["code"]) for inc in vs["compose"]["include"] for c in inc["concept"]}


def test_the_agreed_names_and_nothing_else() -> None:
    assert {p.stem for p in FOLDER.glob("*.json")} == NAMES


@pytest.mark.parametrize("name", sorted(NAMES))
def test_value_set_file(name: str) -> None:
    vs = json.loads((FOLDER / f"{name}.json").read_text())
    validate_resource(vs)
    assert vs["id"] == name
    assert vs["url"] == BASE + name
    assert vs["status"] == "active"
    assert "Sources:" in vs["description"]
    for inc in vs["compose"]["include"]:
        assert inc["system"] in SYSTEMS
        assert "filter" not in inc and "valueSet" not in inc
        assert inc["concept"], f"{name}: an include without concepts"
        listed = [c["code"] for c in inc["concept"]]
        assert len(listed) == len(set(listed)), f"{name}: duplicate codes"
        if inc["system"] == "http://www.whocc.no/atc":
            assert all(len(c) == 7 for c in listed), f"{name}: ATC codes must be level 5"
        if inc["system"] == "http://hl7.org/fhir/sid/icd-10":
            assert all(len(c) == 3 or (len(c) == 5 and c[3] == ".") for c in listed)


@pytest.mark.parametrize(
    ("union", "parts"),
    [
        ("ascvd", ["ischaemic-heart-disease", "stroke-tia", "peripheral-arterial-disease"]),
        ("antithrombotics", ["antiplatelets", "anticoagulants"]),
    ],
)
def test_unions_are_their_parts(union: str, parts: list[str]) -> None:
    assert codes(union) == set().union(*(codes(p) for p in parts))


def test_oral_glucose_lowering_contains_the_oral_classes() -> None:
    oral = codes("oral-glucose-lowering")
    for part in ("metformin", "sulfonylureas", "dpp4-inhibitors", "sglt2-inhibitors"):
        assert codes(part) <= oral, part
    assert not codes("insulins") & oral


def test_icd10_categories_come_with_their_subcodes() -> None:
    t2d = {c for s, c in codes("type-2-diabetes") if s.endswith("icd-10")}
    assert {"E11", "E11.2", "E11.9"} <= t2d
    compl = {c for s, c in codes("diabetes-complications") if s.endswith("icd-10")}
    assert {"E11.2", "E11.3", "E11.4", "E11.5"} <= compl


def test_hba1c_lists_the_three_loinc_codes() -> None:
    assert {c for _, c in codes("hba1c")} == {"4548-4", "17856-6", "59261-8"}


def test_the_generator_codes_are_covered() -> None:
    """Each condition code of fhir_profiles/synth/clinical.json is in its value set (except
    ICPC-2 U99, which is not specific to CKD: see valuesets/README.md)."""
    clinical = json.loads((PROFILES / "synth" / "clinical.json").read_text())
    to_vs = {
        "t2d": "type-2-diabetes",
        "prediabetes": "prediabetes",
        "hypertension": "hypertension",
        "dyslipidaemia": "dyslipidaemia",
        "ihd": "ischaemic-heart-disease",
        "stroke": "stroke-tia",
        "pad": "peripheral-arterial-disease",
        "heart_failure": "heart-failure",
        "af": "atrial-fibrillation",
        "ckd": "chronic-kidney-disease",
        "copd": "copd",
        "depression": "depression",
        "dementia": "dementia",
        "frailty": "frailty",
        "obesity": "obesity",
    }
    systems = {
        "icpc2": "http://hl7.org/fhir/sid/icpc-2",
        "icd10": "http://hl7.org/fhir/sid/icd-10",
        "snomed": "http://snomed.info/sct",
    }
    for key, cond in clinical["conditions"].items():
        vs = codes(to_vs[key])
        for variant in cond["variants"]:
            for field, system in systems.items():
                for code, *_ in variant[field]:
                    if (system, code) == ("http://hl7.org/fhir/sid/icpc-2", "U99"):
                        continue
                    assert (system, code) in vs, f"{key}: {code} missing from {to_vs[key]}"
    medicines = json.loads((PROFILES / "synth" / "medicines.json").read_text())["catalogue"]
    atc = {item["atc"] for item in medicines.values()}
    for name in (
        "metformin",
        "statins",
        "insulins",
        "glp1-agonists",
        "sglt2-inhibitors",
        "antiplatelets",
        "anticoagulants",
        "ace-inhibitors-arbs",
        "beta-blockers",
        "calcium-channel-blockers",
        "diuretics",
        "dpp4-inhibitors",
        "sulfonylureas",
    ):
        assert {c for _, c in codes(name)} & atc, f"no generator medicine in {name}"


@pytest.fixture(scope="module")
def synthea_codes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {
        "Condition": set(),
        "MedicationRequest": set(),
        "Observation": set(),
    }
    with tarfile.open(SHARED / "synthea-r4" / "synthea-r4-617.tgz") as tar:
        for member in tar.getmembers():
            if not member.name.endswith(".json"):
                continue
            f = tar.extractfile(member)
            assert f is not None
            bundle: dict[str, Any] = orjson.loads(f.read())
            for e in bundle["entry"]:
                r = e["resource"]
                cc = r.get("code") or r.get("medicationCodeableConcept") or {}
                if r["resourceType"] in out:
                    out[r["resourceType"]] |= {c["code"] for c in cc.get("coding", ())}
                for comp in r.get("component", ()):
                    out["Observation"] |= {c["code"] for c in comp["code"]["coding"]}
    return out


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("type-2-diabetes", "Condition", {"44054006"}),
        ("hypertension", "Condition", {"38341003"}),
        ("prediabetes", "Condition", {"15777000"}),
        ("dyslipidaemia", "Condition", {"55822004"}),
        ("ischaemic-heart-disease", "Condition", {"53741008", "22298006", "399211009"}),
        ("stroke-tia", "Condition", {"230690007"}),
        ("heart-failure", "Condition", {"88805009"}),
        ("atrial-fibrillation", "Condition", {"49436004"}),
        ("copd", "Condition", {"185086009", "87433001"}),
        ("dementia", "Condition", {"26929004", "230265002"}),
        ("chronic-kidney-disease", "Condition", {"431855005", "431856006", "127013003"}),
        ("diabetes-complications", "Condition", {"368581000119106", "422034002", "127013003"}),
        ("obesity", "Condition", {"162864005"}),
        ("statins", "MedicationRequest", {"316672", "312961", "259255"}),
        ("metformin", "MedicationRequest", {"860975"}),
        ("insulins", "MedicationRequest", {"106892"}),
        ("antiplatelets", "MedicationRequest", {"309362", "243670"}),
        ("anticoagulants", "MedicationRequest", {"855332"}),
        ("diuretics", "MedicationRequest", {"316049"}),
        ("beta-blockers", "MedicationRequest", {"866414"}),
        ("calcium-channel-blockers", "MedicationRequest", {"197361"}),
        ("ace-inhibitors-arbs", "MedicationRequest", {"833036"}),
        ("hba1c", "Observation", {"4548-4"}),
        ("blood-pressure-panel", "Observation", {"55284-4"}),
        ("systolic-bp", "Observation", {"8480-6"}),
        ("egfr", "Observation", {"33914-3"}),
        ("ldl-cholesterol", "Observation", {"18262-6"}),
        ("bmi", "Observation", {"39156-5"}),
        ("smoking-status", "Observation", {"72166-2"}),
    ],
)
def test_synthea_codes_are_covered(
    synthea_codes: dict[str, set[str]], name: str, kind: str, expected: set[str]
) -> None:
    assert expected <= synthea_codes[kind], f"{expected - synthea_codes[kind]} not in Synthea"
    assert expected <= {c for _, c in codes(name)}


def test_the_map_uses_only_shipped_value_sets() -> None:
    assert load_map().value_sets() <= set(shipped_value_sets())


def test_readme_lists_the_sources() -> None:
    text = Path(FOLDER / "README.md").read_text()
    for word in ("SNOMED CT", "ICPC-2", "ICD-10", "LOINC", "ATC", "RxNorm"):
        assert word in text
