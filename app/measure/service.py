"""Evaluate a stored Measure for a period and a subject: the use cases behind the operations
and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.errors import FhirError
from app.fhir.references import parse_reference
from app.measure.criteria import CompiledMeasure, compile_measure
from app.measure.evaluator import Evaluator, Subject
from app.measure.population import evaluate_groups
from app.measure.report import REPORT_TYPES, build_report
from app.store import reads
from app.store.schema import idx_reference, idx_token, idx_uri, resource, resource_version

_COMPILED: dict[bytes, CompiledMeasure] = {}


@dataclass
class LoadedMeasure:
    resource: dict[str, Any]
    compiled: CompiledMeasure

    @property
    def canonical(self) -> str:
        url = self.resource.get("url") or f"Measure/{self.resource['id']}"
        version = self.resource.get("version")
        return f"{url}|{version}" if version and self.resource.get("url") else url


async def load_measure(conn: AsyncConnection, measure_id: str | None,
                       url: str | None) -> LoadedMeasure:
    content: bytes | None = None
    if measure_id is not None:
        found = await reads.read_version(conn, "Measure", measure_id)
        if found is None or found.content is None:
            raise FhirError.of(404, "not-found", f"Measure/{measure_id} is not known")
        content = found.content
    elif url:
        canonical, _, version = url.partition("|")
        v = resource_version
        q = (select(v.c.content)
             .select_from(resource.join(v, and_(v.c.res_pk == resource.c.pk,
                                                v.c.version == resource.c.version)))
             .where(resource.c.res_type == "Measure", ~resource.c.deleted,
                    resource.c.pk.in_(select(idx_uri.c.res_pk).where(
                        idx_uri.c.res_type == "Measure", idx_uri.c.param == "url",
                        idx_uri.c.value == canonical)))
             .order_by(resource.c.last_updated.desc()).limit(1))
        if version:  # `url|1.0.0`: that version, not the latest Measure with the url
            q = q.where(resource.c.pk.in_(select(idx_token.c.res_pk).where(
                idx_token.c.res_type == "Measure", idx_token.c.param == "version",
                idx_token.c.code == version)))
        content = (await conn.execute(q)).scalar()
        if content is None:
            parsed = parse_reference(url)
            if parsed is not None and parsed.type == "Measure":
                return await load_measure(conn, parsed.id, None)
            raise FhirError.of(404, "not-found", f"no Measure with url '{url}'")
    else:
        raise FhirError.of(400, "required", "name the Measure: Measure/{id}/$evaluate-measure "
                           "or the `measure` parameter (its canonical url)")
    compiled = _COMPILED.get(content)
    if compiled is None:
        compiled = compile_measure(orjson.loads(content))
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        _COMPILED[content] = compiled
    return LoadedMeasure(orjson.loads(content), compiled)


async def resolve_subject(conn: AsyncConnection, subject: str | None,
                          practitioner: str | None) -> Subject:
    x = idx_reference
    if practitioner:
        ref = practitioner if "/" in practitioner else f"Practitioner/{practitioner}"
        parsed = parse_reference(ref)
        if parsed is None:
            raise FhirError.of(400, "invalid", f"practitioner '{practitioner}' is not a reference")
        roles = select(x.c.res_pk).where(x.c.res_type == "PractitionerRole",
                                         x.c.param == "practitioner",
                                         x.c.target_id == parsed.id)
        role_ids = select(resource.c.id).where(resource.c.pk.in_(roles))
        sel = select(x.c.target_id).where(
            x.c.res_type == "Patient", x.c.param == "general-practitioner",
            or_(and_(x.c.target_type == parsed.type, x.c.target_id == parsed.id),
                and_(x.c.target_type == "PractitionerRole", x.c.target_id.in_(role_ids))))
        sel = select(resource.c.id).where(resource.c.res_type == "Patient",
                                          resource.c.pk.in_(select(x.c.res_pk).where(
                                              x.c.res_type == "Patient",
                                              x.c.param == "general-practitioner",
                                              or_(and_(x.c.target_type == parsed.type,
                                                       x.c.target_id == parsed.id),
                                                  and_(x.c.target_type == "PractitionerRole",
                                                       x.c.target_id.in_(role_ids))))))
        return Subject("practitioner", ref, sel)
    if not subject:
        return Subject("all")
    ref = subject if "/" in subject else f"Patient/{subject}"
    parsed = parse_reference(ref)
    if parsed is None or parsed.type not in ("Patient", "Group", "Practitioner"):
        raise FhirError.of(400, "invalid", f"subject '{subject}' must be Patient/id, Group/id "
                           "or Practitioner/id")
    cur = await reads.current(conn, parsed.type, parsed.id)
    if cur is None or cur.deleted:
        raise FhirError.of(404, "not-found", f"subject {ref} is not known")
    if parsed.type == "Patient":
        return Subject("patient", ref, select(resource.c.id).where(
            resource.c.res_type == "Patient", resource.c.id == parsed.id))
    if parsed.type == "Practitioner":
        return await resolve_subject(conn, None, ref)
    members = select(x.c.target_id).where(x.c.res_pk == cur.pk, x.c.param == "member",
                                          x.c.target_type == "Patient")
    gone = await _inactive_members(conn, parsed.id)
    if gone:
        members = members.where(x.c.target_id.not_in(gone))
    return Subject("group", ref, members)


async def _inactive_members(conn: AsyncConnection, group_id: str) -> list[str]:
    """Patients a Group lists with `member.inactive` true: no longer members (the search
    index keeps every `member.entity`)."""
    found = await reads.read_version(conn, "Group", group_id)
    group = orjson.loads(found.content) if found is not None and found.content else {}
    listed: dict[bool, set[str]] = {True: set(), False: set()}
    for m in group.get("member", []):
        parsed = parse_reference(m.get("entity", {}).get("reference", ""))
        if parsed is not None and parsed.type == "Patient":
            listed[m.get("inactive") is True].add(parsed.id)
    return sorted(listed[True] - listed[False])  # an active entry wins (a patient back in)


async def evaluate(conn: AsyncConnection, loaded: LoadedMeasure, period: tuple[str, str],
                   report_type: str | None, subject: Subject,
                   evaluator: Evaluator | None = None) -> dict[str, Any]:
    if report_type is None:
        report_type = "subject" if subject.kind == "patient" else "population"
    if report_type not in REPORT_TYPES:
        raise FhirError.of(400, "invalid", f"reportType '{report_type}' is not one of "
                           + ", ".join(REPORT_TYPES))
    if REPORT_TYPES[report_type] == "individual" and subject.kind != "patient":
        raise FhirError.of(400, "invalid", "an individual report needs a Patient subject")
    ev = evaluator or Evaluator(conn, period, subject)
    evaluated = None
    if subject.kind == "patient":
        assert subject.reference is not None
        pid = subject.reference.split("/")[1]
        refs: list[str] = []
        for rv in loaded.compiled.retrieves:
            refs += await ev.resources_of(rv, pid)
        evaluated = list(dict.fromkeys(refs))
    return await build_report(ev, loaded.compiled, report_type, loaded.canonical,
                              subject.reference, evaluated)


async def care_gaps(conn: AsyncConnection, measures: list[LoadedMeasure],
                    period: tuple[str, str], subject: Subject) -> list[dict[str, Any]]:
    """Per patient, the measures whose denominator holds them but whose numerator does not
    (or, for a measure where lower is better, whose numerator does)."""
    ev = Evaluator(conn, period, subject)
    gaps: dict[str, list[tuple[LoadedMeasure, str]]] = {}
    chosen = [(m, group) for m in measures if m.compiled.scoring == "proportion"
              for group in m.compiled.groups]
    # one statement for every Measure: the criteria they share are read once
    results = await evaluate_groups(ev, [(group, "proportion") for _, group in chosen], [],
                                    with_patients=True)
    for (m, group), res in zip(chosen, results, strict=True):
        eligible = (res.patients("denominator") - res.patients("denominator-exclusion")
                    - res.patients("denominator-exception"))
        met = res.patients("numerator") - res.patients("numerator-exclusion")
        open_gap = eligible & met if m.compiled.improvement == "decrease" else eligible - met
        num = group.populations.get("numerator")
        what = (num.description if num and num.description else
                m.resource.get("title") or m.resource.get("name") or m.canonical)
        for pid in open_gap:
            gaps.setdefault(pid, []).append((m, what))
    return [{"patient": pid, "gaps": [(m.canonical, m.resource.get("title", ""), what,
                                       m.resource.get("id")) for m, what in items]}
            for pid, items in sorted(gaps.items())]
