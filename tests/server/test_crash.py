"""A server killed with SIGKILL in the middle of a large transaction Bundle leaves all of it or
none of it, and a server restarted on the same database serves normally.

The same Bundle is sent once beforehand, to measure it. The kill then lands inside the
database transaction: on PostgreSQL as soon as the server is seen copying rows into the tables
(pg_stat_activity), on SQLite half-way through the time the server held the database's write
lock for the first Bundle."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy.engine import make_url

from tests.conftest import FHIR_JSON, _pg_admin_dsn, fresh_database
from tests.server.conftest import serve

OBSERVATIONS = 4000


def heart_rates(patient_id: str, n: int = OBSERVATIONS) -> bytes:
    entries = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": f"Patient/{patient_id}"},
                "effectiveDateTime": f"2024-03-{1 + i // 1440 % 28:02d}T{i // 60 % 24:02d}:"
                f"{i % 60:02d}:00+01:00",
                "valueQuantity": {
                    "value": 55 + i % 60,
                    "unit": "/min",
                    "system": "http://unitsofmeasure.org",
                    "code": "/min",
                },
            },
            "request": {"method": "POST", "url": "Observation"},
        }
        for i in range(n)
    ]
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def observation_count(client: httpx.Client, patient_id: str) -> int:
    r = client.get("/Observation", params={"subject": f"Patient/{patient_id}", "_summary": "count"})
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def new_patient(client: httpx.Client) -> str:
    r = client.post("/Patient", json={"resourceType": "Patient", "gender": "unknown"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


class WriteProbe:
    """Looks at the database from outside the server. `busy()`: on SQLite, the server holds
    the write lock (it takes it when the transaction begins, and SQLite keeps the changes in
    memory until the commit); on PostgreSQL, the server is copying rows into the tables."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.sqlite = url.drivername.startswith("sqlite")
        if self.sqlite:
            self.conn: Any = sqlite3.connect(str(url.database), timeout=0, isolation_level=None)
        else:
            self.conn = psycopg.connect(_pg_admin_dsn(database_url), autocommit=True)

    def busy(self) -> bool:
        if not self.sqlite:
            row = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE 'COPY %'"
            ).fetchone()
            return bool(row and row[0])
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        self.conn.execute("ROLLBACK")
        return False

    def busy_during(self, request: threading.Thread) -> float:
        """Seconds between the first and the last time `busy()` held while `request` ran."""
        seen: list[float] = []
        while request.is_alive():
            if self.busy():
                seen.append(time.monotonic())
            time.sleep(0.002)
        return seen[-1] - seen[0] if seen else 0.0

    def close(self) -> None:
        self.conn.close()


def post_bundle(url: str, body: bytes) -> tuple[threading.Thread, dict[str, Any]]:
    """POST the Bundle from a thread; the dict receives its `response` or its `error`."""
    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            with httpx.Client(base_url=url, headers=FHIR_JSON, timeout=120) as c:
                outcome["response"] = c.post("/", content=body)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    return thread, outcome


def test_sigkill_during_a_large_transaction(backend: str) -> None:
    with fresh_database(backend) as database_url:
        with (
            serve(database_url) as server,
            httpx.Client(base_url=server.url, headers=FHIR_JSON, timeout=120) as client,
        ):
            probe = WriteProbe(database_url)
            try:
                # the same Bundle for another patient first: how long it takes, and how long
                # the server is seen writing
                warm_up = new_patient(client)
                # one small Bundle first, so the measured one does not pay for a cold worker
                assert client.post("/", content=heart_rates(warm_up, 1)).status_code == 200
                started = time.monotonic()
                request, outcome = post_bundle(server.url, heart_rates(warm_up))
                writing = probe.busy_during(request)
                duration = time.monotonic() - started
                assert outcome["response"].status_code == 200, outcome["response"].text[:500]
                assert writing > 0, "the probe never saw the server write"
                assert observation_count(client, warm_up) == OBSERVATIONS + 1

                patient_id = new_patient(client)
                body = heart_rates(patient_id)
                request, outcome = post_bundle(server.url, body)
                deadline = time.monotonic() + 10 * duration + 5
                while not probe.busy() and "response" not in outcome:
                    assert time.monotonic() < deadline, "the server never started writing"
                    time.sleep(0.002)
                if probe.sqlite:  # half-way through the transaction; PostgreSQL: at once
                    time.sleep(writing / 2)
                    assert probe.busy(), "the transaction ended before the kill"
                server.kill()
            finally:
                probe.close()
            request.join(timeout=60)
            assert "response" not in outcome, "the server answered before it was killed"
            assert isinstance(outcome["error"], httpx.HTTPError)

        with (
            serve(database_url) as server,
            httpx.Client(base_url=server.url, headers=FHIR_JSON, timeout=120) as client,
        ):
            # killed before it answered: none of the transaction is there
            assert observation_count(client, patient_id) == 0
            assert observation_count(client, warm_up) == OBSERVATIONS + 1
            history = client.get("/Observation/_history", params={"_count": 1})
            assert history.json()["total"] == OBSERVATIONS + 1  # no stray versions either
            # the same Bundle again, on the restarted server: all of it, once
            r = client.post("/", content=body)
            assert r.status_code == 200, r.text[:500]
            assert len(r.json()["entry"]) == OBSERVATIONS
            assert observation_count(client, patient_id) == OBSERVATIONS
            page = client.get(
                "/Observation",
                params={"subject": f"Patient/{patient_id}", "_sort": "-date", "_count": 5},
            ).json()
            assert page["entry"][0]["resource"]["effectiveDateTime"].startswith("2024-03-03T18")
            other = new_patient(client)
            r = client.get(f"/Patient/{other}")
            assert r.status_code == 200 and r.json()["meta"]["versionId"] == "1"
