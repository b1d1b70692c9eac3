"""FHIR errors: one exception type that carries everything an OperationOutcome needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Issue:
    code: str  # from http://hl7.org/fhir/issue-type
    diagnostics: str
    severity: str = "error"
    expression: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = self.expression
        return out


@dataclass
class FhirError(Exception):
    """A client- or server-side failure that becomes an OperationOutcome with `status`."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, status: int, code: str, diagnostics: str, expression: list[str] | None = None
    ) -> FhirError:
        return cls(status, [Issue(code, diagnostics, expression=expression)])

    def __str__(self) -> str:
        return "; ".join(i.diagnostics for i in self.issues)

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def not_found(res_type: str, res_id: str) -> FhirError:
    return FhirError.of(404, "not-found", f"{res_type}/{res_id} is not known to this server")


def invalid(diagnostics: str, expression: list[str] | None = None, status: int = 400) -> FhirError:
    return FhirError.of(status, "invalid", diagnostics, expression)
