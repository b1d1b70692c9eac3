"""The synthetic region's parameters: JSON data under ``fhir_profiles/synth/``.

Clinical knowledge (prevalences, codes, value distributions, rates) lives in the JSON files, each
figure with its ``source``; this module only loads them and offers the small lookups the
generator needs. Files are read once per process.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[2] / "fhir_profiles" / "synth"

Json = dict[str, Any]


@cache
def load(name: str) -> Json:
    """Load ``fhir_profiles/synth/<name>.json`` (cached; treat the result as read-only)."""
    with (DATA_DIR / f"{name}.json").open(encoding="utf-8") as f:
        data: Json = json.load(f)
    return data


def region_data() -> Json:
    """Geography, teams, demography, names and provider ratios (``leuven.json``)."""
    return load("leuven")


def clinical_data() -> Json:
    """Conditions, observations, contacts, pathways (``clinical.json``)."""
    return load("clinical")


def medicine_data() -> Json:
    """Medicine catalogue and treatment rules (``medicines.json``)."""
    return load("medicines")


def band_index(edges: list[int], age: int) -> int:
    """Index of the age band whose lower bound is the largest edge <= ``age``."""
    return bisect_right(edges, age) - 1


def cumulative(weights: list[float]) -> list[float]:
    """Cumulative weights normalised to end at 1.0, for ``bisect`` sampling."""
    total = float(sum(weights))
    out: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return out
