"""The state shared by the builders of one patient's resources, and the code-system URIs.

Builders return plain dicts. Coded sub-objects that never vary (categories, codings from the
parameter files) may be shared between resources: treat generated resources as read-only, or
copy before mutating. Every resource has its own top-level dict, references and ``meta``.
"""

from __future__ import annotations

from typing import Any

from app.synth.timeline import Calendar

Resource = dict[str, Any]

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICPC2 = "http://hl7.org/fhir/sid/icpc-2"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
BCP47 = "urn:ietf:bcp:47"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
SNOMED_BE_EDITION = "http://snomed.info/sct/11000172109"


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def concept(system: str, code: str, display: str | None = None) -> Resource:
    return {"coding": [coding(system, code, display)]}


class PatientContext:
    """Ids, references and the calendar for one patient."""

    __slots__ = ("cal", "pid", "patient_ref", "gp_ref", "gp_display", "team_ref", "resources", "_n")

    def __init__(
        self, cal: Calendar, pid: str, gp_ref: str, gp_display: str, team_ref: str
    ) -> None:
        self.cal = cal
        self.pid = pid
        self.patient_ref = f"Patient/{pid}"
        self.gp_ref = gp_ref
        self.gp_display = gp_display
        self.team_ref = team_ref
        self.resources: list[Resource] = []
        self._n = 0

    def new_id(self, prefix: str) -> str:
        """A deterministic id ``<patient id>-<prefix><counter>``."""
        self._n += 1
        return f"{self.pid}-{prefix}{self._n}"

    def subject(self) -> dict[str, str]:
        return {"reference": self.patient_ref}

    def gp(self) -> dict[str, str]:
        return {"reference": self.gp_ref, "display": self.gp_display}

    def add(self, resource: Resource) -> Resource:
        self.resources.append(resource)
        return resource
