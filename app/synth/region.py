"""The synthetic Leuven-like primary-care region: configuration and entry point.

``generate_region(RegionConfig(...))`` draws the roster (age/sex pyramid, addresses, teams,
SSINs) and the providers at once, then generates each patient's record on demand. Output is a
pure function of the configuration: the same seed and ``today`` give byte-identical resources,
independent of the clock, of hash seeds and of the order in which patients are generated.

Posting order for a FHIR server: ``shared_resources()`` (without the Groups) first, then every
patient, then the team Groups, which reference the patients (see ``bundles.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.synth.demography import Person, draw_roster
from app.synth.geography import Team, build_teams
from app.synth.params import clinical_data
from app.synth.patient import generate_patient
from app.synth.providers import Directory, assign_providers, build_directory
from app.synth.shared import shared_resources
from app.synth.timeline import Calendar

Resource = dict[str, Any]


@dataclass
class RegionConfig:
    """Size, seed and reference date of a synthetic region.

    ``patients``: inhabitants to generate (the full region has 102,000); ``teams``: number of
    neighbourhood teams (8 uses the documented synthetic mapping); ``seed``: the only source of
    randomness; ``today``: the reference date, end of the 3-year observation window.
    """

    patients: int = 20000
    teams: int = 8
    seed: int = 42
    today: date = date(2026, 6, 30)


class Region:
    """A generated region: its roster and providers, and the resources derived from them."""

    def __init__(self, config: RegionConfig) -> None:
        if config.patients < 0:
            raise ValueError("patients must be >= 0")
        self.config = config
        clinical = clinical_data()
        self.calendar = Calendar(config.today, clinical["reference_window_years"]["value"])
        self.teams: list[Team] = build_teams(config.teams)
        self.people: list[Person] = draw_roster(
            config.patients, self.teams, config.seed, config.today
        )
        counts = [0] * len(self.teams)
        for p in self.people:
            counts[p.team] += 1
        self.directory: Directory = build_directory(self.teams, counts, config.seed)
        assign_providers(self.people, self.directory, config.seed)
        self.hospital_refs = [f"Organization/{h.id}" for h in self.directory.hospitals]
        self.lab_refs = [f"Organization/{lab.id}" for lab in self.directory.laboratories]
        self.hba1c_gap_share: float = clinical["monitoring"]["hba1c_gap_share"]["value"]

    def __len__(self) -> int:
        return len(self.people)

    def shared_resources(self) -> list[Resource]:
        """Organizations, Practitioners, PractitionerRoles, team CareTeams and team Groups.

        Every resource has a deterministic ``id``; a fresh list of fresh dicts on every call.
        """
        return shared_resources(self.directory, self.people)

    def patient_resources(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[list[Resource]]:
        """Per patient (roster order, optionally a slice), the list of their resources.

        The Patient comes first; references are literal (``Type/id``) to the patient's own
        resources and to shared ones.
        """
        for person in self.people[start:stop]:
            yield generate_patient(self, person)

    def patient_ssins(self) -> dict[str, str]:
        """Patient id -> SSIN, to turn Group members into conditional references."""
        return {p.id: p.ssin for p in self.people}

    def team_sizes(self) -> dict[str, int]:
        """Team key -> number of inhabitants in the roster."""
        return {s.team.key: s.inhabitants for s in self.directory.staff}


def generate_region(config: RegionConfig | None = None) -> Region:
    """Draw the region for ``config`` (defaults: 20,000 patients, 8 teams, seed 42)."""
    return Region(config or RegionConfig())
