"""Writing bundles and NDJSON files, posting bundles to a (mock) FHIR server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.synth import RegionConfig, generate_region
from app.synth.output import BundlePostError, post_bundles, write_bundles, write_ndjson


@pytest.fixture(scope="module")
def region() -> Any:
    return generate_region(RegionConfig(patients=40, seed=3))


def test_write_bundles_in_posting_order(region: Any, tmp_path: Path) -> None:
    paths = write_bundles(region, tmp_path)
    assert [p.name for p in paths] == sorted(p.name for p in paths)
    assert paths[0].name == "00-shared.json" and paths[-1].name == "90-team-groups.json"
    assert len(paths) == len(region) + 2
    bundle = json.loads(paths[1].read_text())
    assert (
        bundle["type"] == "transaction"
        and bundle["entry"][0]["resource"]["resourceType"] == "Patient"
    )


def test_write_ndjson_one_file_per_type(region: Any, tmp_path: Path) -> None:
    paths = write_ndjson(region, tmp_path)
    assert {p.name for p in paths.values()} == {f"{t}.ndjson" for t in paths}
    lines = [json.loads(line) for p in paths.values() for line in p.read_text().splitlines()]
    expected = len(region.shared_resources()) + sum(len(p) for p in region.patient_resources())
    assert len(lines) == expected
    for rtype, path in paths.items():
        first = json.loads(path.read_text().splitlines()[0])
        assert first["resourceType"] == rtype and "id" in first
    patients = [json.loads(line) for line in paths["Patient"].read_text().splitlines()]
    assert [p["id"] for p in patients] == [f"p{i:06d}" for i in range(len(region))]


def test_post_bundles_posts_everything_in_order(region: Any) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST" and str(request.url) == "http://fhir.test/base/"
        assert request.headers["content-type"] == "application/fhir+json"
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        count = post_bundles(region, "http://fhir.test/base", client=client, progress=False)
    assert count == len(region) + 2 == len(seen)
    assert seen[0]["entry"][0]["request"]["ifNoneExist"].startswith("identifier=")
    assert seen[-1]["entry"][0]["request"]["method"] == "PUT"


def test_post_bundles_fails_loudly_with_the_operation_outcome(region: Any) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "Patient.gender: bad code"}
        ],
    }
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 3:
            return httpx.Response(422, json=outcome)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "transaction-response"})

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(BundlePostError) as err,
    ):
        post_bundles(region, "http://fhir.test", client=client, progress=False)
    assert err.value.status == 422 and err.value.outcome == outcome
    assert "Patient.gender: bad code" in str(err.value)
    assert calls == 3
