"""Writing a synthetic region to disk or posting it to a FHIR server.

- ``write_bundles``: one transaction Bundle per JSON file, named so that sorting the names gives
  the posting order (``00-shared.json``, ``10-patient-<n>.json``, ``90-team-groups.json``).
- ``write_ndjson``: one ``<ResourceType>.ndjson`` per type (Bulk Data format), ids and literal
  references as generated: what a bulk loader writes directly.
- ``post_bundles``: POSTs the bundles to a FHIR base URL in order, stopping at the first failure
  with the server's OperationOutcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from tqdm import tqdm  # type: ignore[import-untyped]

from app.synth.bundles import (
    patient_transaction_bundle,
    shared_transaction_bundle,
    team_groups_bundle,
)
from app.synth.region import Region

FHIR_JSON = "application/fhir+json"


class BundlePostError(RuntimeError):
    """A FHIR server refused a Bundle; carries the status and the OperationOutcome (if any)."""

    def __init__(self, name: str, status: int, outcome: Any) -> None:
        self.name, self.status, self.outcome = name, status, outcome
        detail = (
            orjson.dumps(outcome, option=orjson.OPT_INDENT_2).decode()
            if outcome is not None
            else ""
        )
        super().__init__(f"POST of {name} failed with HTTP {status}:\n{detail}")


def region_bundles(region: Region, progress: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, Bundle) pairs in posting order: shared, each patient, team Groups."""
    shared = region.shared_resources()
    yield "00-shared", shared_transaction_bundle(shared)
    patients = region.patient_resources()
    for resources in tqdm(patients, total=len(region), disable=not progress, unit="patient"):
        yield f"10-patient-{resources[0]['id']}", patient_transaction_bundle(resources)
    yield "90-team-groups", team_groups_bundle(shared, region.patient_ssins())


def write_bundles(region: Region, out_dir: Path | str, progress: bool = False) -> list[Path]:
    """Write one JSON file per transaction Bundle; return the paths in posting order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, bundle in region_bundles(region, progress):
        path = out / f"{name}.json"
        path.write_bytes(orjson.dumps(bundle))
        paths.append(path)
    return paths


def write_ndjson(region: Region, out_dir: Path | str, progress: bool = False) -> dict[str, Path]:
    """Write ``<ResourceType>.ndjson`` files (shared resources first); return type -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, IO[bytes]] = {}
    paths: dict[str, Path] = {}

    def write(resource: dict[str, Any]) -> None:
        rtype = resource["resourceType"]
        f = files.get(rtype)
        if f is None:
            paths[rtype] = out / f"{rtype}.ndjson"
            f = files[rtype] = paths[rtype].open("wb")
        f.write(orjson.dumps(resource))
        f.write(b"\n")

    try:
        for resource in region.shared_resources():
            write(resource)
        patients = region.patient_resources()
        for resources in tqdm(patients, total=len(region), disable=not progress, unit="patient"):
            for resource in resources:
                write(resource)
    finally:
        for f in files.values():
            f.close()
    return paths


def post_bundles(
    region: Region,
    url: str,
    client: httpx.Client | None = None,
    progress: bool = True,
) -> int:
    """POST every Bundle of the region to the FHIR base ``url``; return the number posted.

    Raises ``BundlePostError`` with the server's OperationOutcome on the first non-2xx answer.
    """
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(120.0))
    endpoint = url.rstrip("/") + "/"
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    count = 0
    try:
        for name, bundle in region_bundles(region, progress):
            response = http.post(endpoint, content=orjson.dumps(bundle), headers=headers)
            if not response.is_success:
                try:
                    outcome = response.json()
                except ValueError:
                    outcome = response.text or None
                raise BundlePostError(name, response.status_code, outcome)
            count += 1
    finally:
        if own:
            http.close()
    return count
