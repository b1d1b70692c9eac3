"""The engine's output and its upkeep: RiskAssessment content and versions, stratum Groups per
stratum and team, the dirty queue after an ingest through `POST /`, the background task, and the
population summary with movement between strata."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.fhir.validation import validate_resource
from app.main import create_app
from app.store.schema import patient_dirty
from app.stratify.engine import Stratifier
from tests.conftest import FHIR_JSON
from tests.stratify.conftest import (
    CS,
    ICPC,
    REF,
    P,
    born,
    day,
    post,
    stratify,
    stratum,
    substrata,
    team,
)


async def marked(app: Any) -> set[str]:
    async with app.state.db.read() as conn:
        return {r[0] for r in await conn.execute(select(patient_dirty.c.patient_id))}


async def members(client: httpx.AsyncClient, gid: str) -> set[str]:
    r = await client.get(f"/Group/{gid}")
    if r.status_code == 404:
        return set()
    assert r.status_code == 200, r.text
    return {m["entity"]["reference"].removeprefix("Patient/") for m in r.json().get("member", ())}


async def versions(client: httpx.AsyncClient, path: str) -> int:
    r = await client.get(f"/{path}/_history")
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


async def test_risk_assessment_content(client: httpx.AsyncClient, engine: Stratifier) -> None:
    p = P("p1", born(60)).t2d().lab("4548-4", 8.4, "%", day(-10)).statement("A10AE04", day(-90))
    await post(client, p)
    ra = await stratify(client, "p1")
    validate_resource(ra)
    assert ra["id"] == "stratum-p1"
    assert ra["status"] == "final"
    assert ra["subject"] == {"reference": "Patient/p1"}
    assert ra["occurrenceDateTime"] == REF.isoformat()
    assert ra["method"]["coding"][0]["code"] == "phm-default"
    outcome = ra["prediction"][0]["outcome"]["coding"][0]
    assert outcome == {
        "system": CS,
        "code": "chronic-uncontrolled",
        "display": "Chronic uncontrolled or multimorbid",
    }
    assert substrata(ra) == ["t2d-insulin-complications"]
    rationale = ra["prediction"][0]["rationale"]
    assert "latest HbA1c (%) 8.4" in rationale and ">= 8" in rationale
    basis = {b["reference"] for b in ra["basis"]}
    kinds = {ref.split("/")[0] for ref in basis}
    assert kinds == {"Condition", "Observation", "MedicationStatement"}
    # the RiskAssessment is searchable like any resource
    r = await client.get("/RiskAssessment?subject=Patient/p1")
    assert r.json()["total"] == 1


async def test_versions_only_when_the_stratum_or_basis_changes(
    client: httpx.AsyncClient, engine: Stratifier
) -> None:
    p = P("p1", born(60)).t2d().lab("4548-4", 7.0, "%", day(-100))
    await post(client, p)
    await stratify(client, "p1")
    await stratify(client, "p1")  # nothing changed: no new version
    assert await versions(client, "RiskAssessment/stratum-p1") == 1
    # a new, higher HbA1c: new stratum, new version, history keeps the old one
    await post(client, P("p1", born(60)).lab("4548-4", 8.5, "%", day(-5)))
    ra = await stratify(client, "p1")
    assert stratum(ra) == "chronic-uncontrolled"
    assert ra["meta"]["versionId"] == "2"
    old = (await client.get("/RiskAssessment/stratum-p1/_history/1")).json()
    assert stratum(old) == "chronic-stable"


async def test_own_writes_do_not_mark(
    client: httpx.AsyncClient, app: Any, engine: Stratifier
) -> None:
    await post(client, P("p1", born(60)).t2d())
    assert await marked(app) == {"p1"}
    await engine.stratify_marked()
    assert await marked(app) == set()
    await engine.stratify_all()
    assert await marked(app) == set()


async def test_ingest_then_incremental_recompute(
    client: httpx.AsyncClient, app: Any, engine: Stratifier
) -> None:
    await post(client, P("p1", born(60)), P("p2", born(40)), P("p3", born(30)))
    r = await client.post("/$stratify")
    assert r.status_code == 200, r.text
    summary = {p["name"]: p for p in r.json()["parameter"]}
    assert summary["patients"]["valueInteger"] == 3
    assert summary["mode"]["valueString"] == "marked"
    assert await members(client, "stratum-healthy") == {"p1", "p2", "p3"}
    # an EHR pushes a diagnosis for p2 only
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": "Patient/p2"},
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {"coding": [{"system": ICPC, "code": "T90"}]},
                },
                "request": {"method": "POST", "url": "Condition"},
            }
        ],
    }
    assert (await client.post("/", json=bundle)).status_code == 200
    assert await marked(app) == {"p2"}
    s = await engine.stratify_marked()
    assert (s.patients, s.written) == (1, 1)
    assert await marked(app) == set()
    assert await members(client, "stratum-healthy") == {"p1", "p3"}
    assert await members(client, "stratum-chronic-stable") == {"p2"}
    assert await members(client, "stratum-t2d-lifestyle-oral") == {"p2"}


async def test_a_mark_made_during_a_run_is_kept(
    client: httpx.AsyncClient, app: Any, engine: Stratifier
) -> None:
    from app.store.writer import mark_patients

    await post(client, P("p1", born(60)))
    real = engine._run

    async def remark_during(*args: Any, **kwargs: Any) -> Any:
        async with app.state.db.write() as conn:
            await mark_patients(conn, ["p1"], 99_999_999_999_999_999)
        return await real(*args, **kwargs)

    engine._run = remark_during  # type: ignore[method-assign]
    try:
        await engine.stratify_marked()
    finally:
        del engine._run
    assert await marked(app) == {"p1"}  # marked again meanwhile: recomputed next round


async def test_groups_per_stratum_and_team(client: httpx.AsyncClient, engine: Stratifier) -> None:
    patients = [
        P("a1", born(60)).t2d(),
        P("a2", born(50)),
        P("b1", born(70)).t2d(),
        P("b2", born(30)).condition(ICPC, "K76"),
    ]
    await post(client, *patients, extra=[team("team-a", "a1", "a2"), team("team-b", "b1", "b2")])
    s = await engine.stratify_all()
    assert s.patients == 4
    assert await members(client, "stratum-chronic-stable") == {"a1", "b1", "b2"}
    assert await members(client, "stratum-chronic-stable-team-a") == {"a1"}
    assert await members(client, "stratum-chronic-stable-team-b") == {"b1", "b2"}
    assert await members(client, "stratum-healthy-team-a") == {"a2"}
    assert await members(client, "stratum-ascvd-team-b") == {"b2"}
    g = (await client.get("/Group/stratum-chronic-stable-team-b")).json()
    validate_resource(g)
    assert (g["type"], g["actual"], g["quantity"]) == ("person", True, 2)
    assert g["code"]["coding"][0] == {
        "system": CS,
        "code": "chronic-stable",
        "display": "One chronic condition, stable",
    }
    assert {"reference": "Group/team-b"} in [c.get("valueReference") for c in g["characteristic"]]
    # every stratum has its Groups, empty ones too, so Measures can name them
    assert (await client.get("/Group/stratum-complex-team-a")).json()["quantity"] == 0
    # Groups are searchable by stratum code and by member
    r = await client.get(f"/Group?code={CS}|chronic-stable&_elements=id")
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {
        "stratum-chronic-stable",
        "stratum-chronic-stable-team-a",
        "stratum-chronic-stable-team-b",
    }
    r = await client.get("/Group?member=Patient/b2&_elements=id")
    assert {e["resource"]["id"] for e in r.json()["entry"]} >= {
        "team-b",
        "stratum-chronic-stable",
        "stratum-ascvd-team-b",
    }
    # a second run with nothing changed rewrites no Group
    before = await versions(client, "Group/stratum-chronic-stable")
    assert (await engine.stratify_all()).groups_written == 0
    assert await versions(client, "Group/stratum-chronic-stable") == before


async def test_deleted_and_deceased_patients_leave(
    client: httpx.AsyncClient, app: Any, engine: Stratifier
) -> None:
    from app.fhir.dates import now_us
    from app.store import reads
    from app.store.writer import flush, stage

    await post(client, P("p1", born(60)).t2d(), P("p2", born(60)).t2d())
    await engine.stratify_all()
    assert await members(client, "stratum-chronic-stable") == {"p1", "p2"}
    # p1 dies
    await post(client, P("p1", born(60), deceasedDateTime=day(-1)))
    # p2 is deleted (as a feed without referential integrity would: through the API, the
    # stratum Groups and the RiskAssessment that reference p2 make DELETE answer 409)
    assert (await client.delete("/Patient/p2")).status_code == 409
    async with app.state.db.write() as conn:
        cur = await reads.current(conn, "Patient", "p2")
        assert cur is not None
        await flush(
            conn, [stage("Patient", "p2", None, "DELETE", cur.version + 1, now_us(), cur.pk)]
        )
    s = await engine.stratify_marked()
    assert s.removed == 2
    assert await members(client, "stratum-chronic-stable") == set()
    assert (await client.get("/RiskAssessment/stratum-p1")).status_code == 410
    r = await client.post("/Patient/p1/$stratify")
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_summary_counts_and_movement(client: httpx.AsyncClient, engine: Stratifier) -> None:
    await post(
        client,
        P("a1", born(60)).t2d(),
        P("a2", born(50)),
        P("a3", born(50)),
        extra=[team("team-a", "a1", "a2", "a3")],
    )
    await engine.stratify_all()
    r = await client.get("/$stratification-summary")
    assert r.status_code == 200, r.text
    validate_resource(r.json())
    params = r.json()["parameter"]
    total = next(p["valueInteger"] for p in params if p["name"] == "total")
    counts = {}
    for p in params:
        if p["name"] == "stratum":
            parts = {q["name"]: q for q in p["part"] if q["name"] != "team"}
            counts[parts["code"]["valueCoding"]["code"]] = parts["count"]["valueInteger"]
    assert total == 3
    assert counts["healthy"] == 2 and counts["chronic-stable"] == 1
    await asyncio.sleep(0.01)
    r = await client.get("/$stratification-summary", params={"since": "2000-01-01"})
    move = next(p for p in r.json()["parameter"] if p["name"] == "movement")
    entered = next(q["valueInteger"] for q in move["part"] if q["name"] == "entered")
    assert entered == 3
    # a1 gets worse, a2 gets a risk factor; movement since now-ish counts them
    since = (await client.get("/RiskAssessment/stratum-a1")).json()["meta"]["lastUpdated"]
    await asyncio.sleep(0.01)
    await post(
        client,
        P("a1", born(60)).lab("4548-4", 9.0, "%", day(-1)),
        P("a2", born(50)).condition(ICPC, "K86"),
    )
    await engine.stratify_marked()
    r = await client.get("/$stratification-summary", params={"since": since})
    move = {
        q["name"]: q
        for q in next(p for p in r.json()["parameter"] if p["name"] == "movement")["part"]
    }
    assert move["up"]["valueInteger"] == 2
    assert move["down"]["valueInteger"] == 0
    transitions = [
        q
        for q in next(p for p in r.json()["parameter"] if p["name"] == "movement")["part"]
        if q["name"] == "transition"
    ]
    pairs = {
        (t["part"][0]["valueCoding"]["code"], t["part"][1]["valueCoding"]["code"])
        for t in transitions
    }
    assert pairs == {("chronic-stable", "chronic-uncontrolled"), ("healthy", "at-risk")}


async def test_stratify_all_operation(client: httpx.AsyncClient, engine: Stratifier) -> None:
    await post(client, P("p1", born(60)).t2d())
    r = await client.post(
        "/$stratify",
        json={"resourceType": "Parameters", "parameter": [{"name": "all", "valueBoolean": True}]},
    )
    assert r.status_code == 200, r.text
    params = {p["name"]: p for p in r.json()["parameter"]}
    assert params["mode"]["valueString"] == "all"
    assert params["patients"]["valueInteger"] == 1
    bad = await client.post("/$stratify?all=maybe")
    assert bad.status_code == 400


async def test_background_task_restratifies_an_ingest(database_url: str, client: Any) -> None:
    """A server with the background task: a Bundle posted through POST / is stratified
    within seconds, without anyone calling $stratify."""
    application = create_app(
        Settings(
            database_url=database_url,
            base_url="http://testserver",
            stratify_interval=0.2,
            auto_migrate=False,
            stratify_date=REF.isoformat(),
        )
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=FHIR_JSON
        ) as c:
            await post(c, P("p1", born(60)).t2d().condition(ICPC, "R95"))
            loop = asyncio.get_running_loop()
            start = loop.time()
            task = application.state.stratify
            while loop.time() - start < 5:
                r = await c.get("/RiskAssessment/stratum-p1")
                if r.status_code == 200 and task.rounds >= 1:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 200, "not stratified within 5 s"
            assert task.rounds >= 1
            assert stratum(r.json()) == "chronic-uncontrolled"
            assert "p1" in await members(c, "stratum-chronic-uncontrolled")
            # waking the task runs a round at once
            await post(c, P("p2", born(60)))
            task.wake()
            for _ in range(50):
                if (await c.get("/RiskAssessment/stratum-p2")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await c.get("/RiskAssessment/stratum-p2")).status_code == 200


@pytest.mark.parametrize("path", ["/Patient/nobody/$stratify"])
async def test_unknown_patient(client: httpx.AsyncClient, path: str) -> None:
    r = await client.post(path)
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_a_full_run_removes_patients_deleted_meanwhile(
    client: httpx.AsyncClient, app: Any, engine: Stratifier
) -> None:
    from app.fhir.dates import now_us
    from app.store import reads
    from app.store.writer import flush, stage

    await post(client, P("p1", born(60)).t2d(), P("p2", born(60)))
    await engine.stratify_all()
    async with app.state.db.write() as conn:
        cur = await reads.current(conn, "Patient", "p1")
        assert cur is not None
        await flush(
            conn,
            [stage("Patient", "p1", None, "DELETE", cur.version + 1, now_us(), cur.pk)],
            mark=False,  # as if its mark were lost: the full run must still notice
        )
    s = await engine.stratify_all()
    assert (s.patients, s.removed) == (1, 1)
    assert (await client.get("/RiskAssessment/stratum-p1")).status_code == 410
    assert await members(client, "stratum-chronic-stable") == set()
    assert await members(client, "stratum-healthy") == {"p2"}


async def test_one_engine_run_at_a_time_across_processes(app: Any) -> None:
    """Each server worker process has its own EngineLock; only one may hold the database's
    (a PostgreSQL advisory lock, an OS lock on a file beside a SQLite database)."""
    from app.stratify.worker import EngineLock

    first, second = EngineLock(app.state.db), EngineLock(app.state.db)
    async with first.hold(wait=False) as got:
        assert got
        async with second.hold(wait=False) as other:
            assert not other
    async with second.hold(wait=False) as got:
        assert got  # released
