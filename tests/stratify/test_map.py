"""The stratification map as data: the shipped map, a region's own map loaded from a file, and
malformed maps rejected with an error that names the place in the file."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from app.stratify.map import DEFAULT_MAP, MapError, load_map, parse_map
from app.stratify.rules import PatientFacts
from tests.stratify.conftest import ICPC, P, born, day, post, stratify, stratum

DEFAULT: dict[str, Any] = json.loads(DEFAULT_MAP.read_text())


def test_default_map() -> None:
    m = load_map()
    assert [s.code for s in m.strata] == [
        "frail-end-of-life",
        "complex",
        "chronic-uncontrolled",
        "chronic-stable",
        "at-risk",
        "healthy",
    ]
    assert [s.level for s in m.strata] == [6, 5, 4, 3, 2, 1]
    assert {k: [s.code for s in v] for k, v in m.axes.items()} == {
        "diabetes": ["t2d-insulin-complications", "t2d-lifestyle-oral"],
        "cardiovascular": ["ascvd"],
    }
    # every stratum cites its source, every threshold-bearing fact too
    assert all(s.source for s in m.all_strata())
    assert all(f.spec.get("source") for f in m.facts.values() if f.kind == "lab")


def test_the_last_stratum_catches_everyone() -> None:
    m = load_map()
    assert m.strata[-1].rule.holds(PatientFacts("x"))


def test_code_system_lists_every_stratum_with_its_level() -> None:
    cs = json.loads((DEFAULT_MAP.parents[1] / "codesystems" / "stratum.json").read_text())
    concepts = {c["code"]: c for c in cs["concept"]}
    m = load_map()
    assert cs["url"] == m.code_system
    for s in m.all_strata():
        assert concepts[s.code]["display"] == s.display
        props = {p["code"]: p for p in concepts[s.code]["property"]}
        assert props["axis"]["valueCode"] == s.axis
        if s.level is not None:
            assert props["level"]["valueInteger"] == s.level
    assert cs["count"] == len(cs["concept"]) == len(m.all_strata())


def _bad(mutate: Any) -> MapError:
    raw = copy.deepcopy(DEFAULT)
    mutate(raw)
    with pytest.raises(MapError) as info:
        parse_map(raw, "region.json")
    return info.value


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (
            lambda m: m["strata"][2]["when"]["any"][1]["all"][1].update(value="high"),
            "$.strata[2].when.any[1].all[1].value",
            "number",
        ),
        (
            lambda m: m["strata"][0]["when"]["any"].append({"fact": "frailty_score"}),
            "$.strata[0].when.any[3].fact",
            "unknown fact 'frailty_score'",
        ),
        (lambda m: m["strata"][3]["when"].update(op="~"), "$.strata[3].when.op", "~"),
        (
            lambda m: m["strata"][0]["when"]["any"][0].update(op=">=", value=1),
            "$.strata[0].when.any[0].op",
            "yes/no",
        ),
        (
            lambda m: m["strata"][4]["when"]["any"].append({"fact": "hba1c"}),
            "$.strata[4].when.any[12]",
            "needs an 'op'",
        ),
        (
            lambda m: m["strata"][5].update(when={"fact": "t2d"}),
            "$.strata[5].when",
            "must hold for everyone",
        ),
        (
            lambda m: m["substrata"][1]["strata"][0].update(code="complex"),
            "$.substrata[1].strata[0].code",
            "already used at $.strata[1].code",
        ),
        (lambda m: m["facts"]["hba1c"].pop("lookbackDays"), "$.facts.hba1c", "lookbackDays"),
        (
            lambda m: m["facts"]["hba1c"].update(lookbackDays=-5),
            "$.facts.hba1c.lookbackDays",
            "minimum",
        ),
        (lambda m: m["facts"]["t2d"].update(kind="diagnosis"), "$.facts.t2d.kind", "diagnosis"),
        (lambda m: m["strata"][1].pop("display"), "$.strata[1]", "display"),
        (lambda m: m.update(strata=[]), "$.strata", "non-empty"),
        (
            lambda m: m["facts"]["t2d"].update(valueSet="type-2-diabetes"),
            "$.facts.t2d.valueSet",
            "does not match",
        ),
    ],
)
def test_malformed_map_names_the_place(mutate: Any, path: str, words: str) -> None:
    err = _bad(mutate)
    assert err.file == "region.json"
    assert err.path == path, str(err)
    assert words in err.message, str(err)
    assert str(err).startswith(f"region.json: {path}: ")


def test_unparseable_file(tmp_path: Path) -> None:
    f = tmp_path / "broken.json"
    f.write_text('{"id": "x",\n "strata": [}')
    with pytest.raises(MapError) as info:
        load_map(f)
    assert info.value.file == "broken.json"
    assert "line 2" in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MapError, match="no such file"):
        load_map(tmp_path / "nope.json")


async def test_a_server_with_a_malformed_map_does_not_start(
    database_url: str, app: Any, tmp_path: Path
) -> None:
    raw = copy.deepcopy(DEFAULT)
    raw["strata"][0]["when"]["any"][2]["all"][0]["value"] = "eighty"
    f = tmp_path / "leuven.json"
    f.write_text(json.dumps(raw))
    server = create_app(
        Settings(database_url=database_url, auto_migrate=False, stratification_map=str(f))
    )
    with pytest.raises(MapError, match=r"leuven.json: \$.strata\[0\].when.any\[2\].all\[0\]"):
        async with server.router.lifespan_context(server):
            pass


CUSTOM = {
    "id": "region-x",
    "version": "0.1",
    "title": "Two strata and a diabetes axis",
    "codeSystem": "https://region-x.example.org/fhir/CodeSystem/segment",
    "facts": {
        "age": {"kind": "age"},
        "diabetes": {
            "kind": "condition",
            "valueSet": "https://phm-fhir.be/fhir/ValueSet/type-2-diabetes",
            "label": "diabetes",
        },
        "gender": {"kind": "sex"},
    },
    "strata": [
        {
            "code": "older-women-with-diabetes",
            "display": "Older women with diabetes",
            "when": {
                "all": [
                    {"fact": "diabetes"},
                    {"fact": "age", "op": ">=", "value": 65},
                    {"fact": "gender", "op": "=", "value": "female"},
                ]
            },
        },
        {"code": "everyone-else", "display": "Everyone else", "when": True},
    ],
    "substrata": [
        {
            "axis": "age",
            "strata": [
                {
                    "code": "young",
                    "display": "Under 30",
                    "when": {"fact": "age", "op": "<", "value": 30},
                }
            ],
        }
    ],
}


async def test_custom_map_from_a_file(client: httpx.AsyncClient, app: Any, tmp_path: Path) -> None:
    from app.stratify.engine import Stratifier
    from tests.stratify.conftest import REF

    f = tmp_path / "region-x.json"
    f.write_text(json.dumps(CUSTOM))
    smap = load_map(f)
    engine = Stratifier(app.state.db, smap, REF)
    await post(
        client,
        P("w1", born(70)).condition(ICPC, "T90"),
        P("m1", born(70), gender="male").condition(ICPC, "T90"),
        P("y1", born(20)),
    )
    s = await engine.stratify_all()
    assert dict(s.counts) == {"older-women-with-diabetes": 1, "everyone-else": 2}
    ra = (await client.get("/RiskAssessment/stratum-w1")).json()
    outcome = ra["prediction"][0]["outcome"]["coding"][0]
    assert outcome["system"] == CUSTOM["codeSystem"]
    assert ra["method"]["coding"][0]["code"] == "region-x"
    young = (await client.get("/RiskAssessment/stratum-y1")).json()
    assert young["prediction"][1]["outcome"]["coding"][0]["code"] == "young"
    members = (await client.get("/Group/stratum-older-women-with-diabetes")).json()["member"]
    assert members == [{"entity": {"reference": "Patient/w1"}}]


async def test_custom_map_on_the_server(database_url: str, client: Any, tmp_path: Path) -> None:
    from tests.conftest import FHIR_JSON
    from tests.stratify.conftest import REF

    f = tmp_path / "region-x.json"
    f.write_text(json.dumps(CUSTOM))
    app = create_app(
        Settings(
            database_url=database_url,
            auto_migrate=False,
            stratification_map=str(f),
            stratify_date=REF.isoformat(),
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=FHIR_JSON
        ) as c:
            await post(c, P("w1", born(66)).condition(ICPC, "T90").lab("4548-4", 7, "%", day(-3)))
            assert stratum(await stratify(c, "w1")) == "older-women-with-diabetes"
