"""FHIR search compiled to one SQL statement over the index tables (R4 3.1.1).

`compile_clauses` turns parsed clauses into one boolean SQL expression over `resource` (aliased
`r`); every clause is a semi-join `r.pk IN (SELECT res_pk FROM idx_x WHERE ...)`, so the planner
can start from the most selective index. Sorting uses correlated sub-selects on the index tables
and paging is keyset-based (stable under concurrent writes, constant cost at any depth).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from app.fhir.dates import DateError, date_range
from app.fhir.errors import FhirError, Issue
from app.fhir.query import Clause, split_escaped, split_prefix, unescape
from app.fhir.references import parse_reference
from app.fhir.search_params import SearchParam, carried_statuses, clinical_dates, registry
from app.fhir.text import fold
from app.store.schema import (
    idx_composite,
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resource,
)

r = resource.alias("r")


@dataclass
class CompileContext:
    """What compilation needs beyond the clauses: expanded ValueSets, and where to report."""

    valuesets: dict[str, list[tuple[str | None, str | None]]] = field(default_factory=dict)
    warnings: list[Issue] = field(default_factory=list)
    strict: bool = False
    # Keyset bound on pk, pushed into every index subquery when results are ordered by pk
    # alone, so a deep page starts at the cursor in the index instead of at its beginning.
    pk_after: int | None = None
    pk_before: int | None = None

    def unknown(self, res_type: str, name: str) -> None:
        msg = f"unknown search parameter '{name}' for {res_type}: ignored"
        if self.strict:
            raise FhirError.of(400, "not-supported", msg.replace(": ignored", ""))
        self.warnings.append(Issue("not-supported", msg, severity="warning"))


_BOUNDS: list[tuple[int | None, int | None]] = [(None, None)]


# Conditions on the carried clinical date and status codes, for the token clause being compiled.
_CARRIED: list[list[ColumnElement[bool]]] = [[]]


def _in_index(table: Any, res_type: str, param: str, *conds: ColumnElement[bool]) -> Any:
    sub = select(table.c.res_pk).where(table.c.res_type == res_type, table.c.param == param, *conds)
    if table is idx_token and _CARRIED[-1]:
        sub = sub.where(*_CARRIED[-1])
    after, before = _BOUNDS[-1]
    if after is not None:
        sub = sub.where(table.c.res_pk > after)
    if before is not None:
        sub = sub.where(table.c.res_pk < before)
    return sub


def opaque(test: ColumnElement[bool]) -> ColumnElement[bool]:
    """`test`, written so that neither planner uses it as an index condition nor turns its
    IN sub-selects into joins: PostgreSQL keeps them as hashed SubPlans (built once, whatever
    the row estimates say) and SQLite as ephemeral indexes."""
    return case((test, 1), else_=0) == 1


def _carried_status(column: Any, res_type: str, c: Clause) -> ColumnElement[bool]:
    """`status=a,b` (or `status:not=a,b`) on the rows of the lead clause, by the code they
    carry; where they carry none (NULL: the resource has several), the status rows of that
    resource are looked up as the clause alone would."""
    codes = list(dict.fromkeys(c.values))
    x = idx_token.alias()
    has = exists().where(x.c.res_pk == idx_token.c.res_pk, x.c.res_type == res_type,
                         x.c.param == c.name, x.c.code.in_(codes))
    # opaque: a filter on the lead's index rows, never an index condition (PostgreSQL would
    # OR two bitmap scans of the code index and read the table)
    if c.modifier == "not":
        return opaque(or_(and_(column.is_not(None), column.not_in(codes)),
                          and_(column.is_(None), ~has)))
    return opaque(or_(column.in_(codes), and_(column.is_(None), has)))


def _like_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- value predicates per parameter type -------------------------------------------------------


def _token_pred(t: Any, value: str) -> ColumnElement[bool]:
    parts = split_escaped(value, "|")
    if len(parts) == 1:
        return t.c.code == parts[0]
    system, code = parts[0], "|".join(parts[1:])
    if system == "":
        return and_(t.c.system.is_(None), t.c.code == code)
    if code == "":
        return t.c.system == system
    return and_(t.c.system == system, t.c.code == code)


def _range_pred(low: Any, high: Any, prefix: str, qlo: int, qhi: int) -> ColumnElement[bool]:
    if prefix == "eq":
        return and_(low >= qlo, high <= qhi)
    if prefix == "ne":
        return or_(low < qlo, high > qhi)
    if prefix == "gt":
        return high > qhi
    if prefix == "lt":
        return low < qlo
    if prefix == "ge":
        return high >= qlo
    if prefix == "le":
        return low <= qhi
    if prefix == "sa":
        return low > qhi
    if prefix == "eb":
        return high < qlo
    # ap: within 10% of the distance to now (R4 3.1.1.4.2), at least a day
    now = int(time.time() * 1_000_000)
    margin = max(abs(now - qlo) // 10, 86_400_000_000)
    return and_(low <= qhi + margin, high >= qlo - margin)


def _date_value(value: str) -> tuple[str, int, int]:
    prefix, v = split_prefix(value)
    try:
        lo, hi = date_range(v)
    except DateError as exc:
        raise FhirError.of(400, "invalid", f"bad date search value: {exc}") from None
    return prefix, lo, hi


def _number_bounds(v: str) -> tuple[float, float, float]:
    try:
        num = float(v)
        mantissa, _, exponent = v.lower().partition("e")
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        # the implicit range follows the significant figures: 2e-2 is [0.015, 0.025)
        half = 0.5 * 10.0 ** ((int(exponent) if exponent else 0) - decimals)
    except (ValueError, OverflowError):
        num = half = math.nan
    if not math.isfinite(num) or not math.isfinite(half):
        raise FhirError.of(400, "invalid", f"'{v}' is not a finite number")
    return num, num - half, num + half


def _number_pred(col: Any, value: str) -> ColumnElement[bool]:
    prefix, v = split_prefix(value)
    num, lo, hi = _number_bounds(v)
    if prefix == "eq":
        return and_(col >= lo, col < hi)
    if prefix == "ne":
        return or_(col < lo, col >= hi)
    if prefix in ("gt", "sa"):
        return col > num
    if prefix in ("lt", "eb"):
        return col < num
    if prefix == "ge":
        return col >= num
    if prefix == "le":
        return col <= num
    margin = abs(num) * 0.1
    return and_(col >= num - margin, col <= num + margin)


def _quantity_pred(t: Any, value: str, num_col: Any = None, sys_col: Any = None,
                   code_col: Any = None, unit_col: Any = None) -> ColumnElement[bool]:
    num_col = t.c.value if num_col is None else num_col
    sys_col = t.c.system if sys_col is None else sys_col
    code_col = t.c.code if code_col is None else code_col
    parts = split_escaped(value, "|")
    pred = _number_pred(num_col, parts[0])
    if len(parts) >= 3:
        system, code = parts[1], parts[2]
        if system:
            pred = and_(pred, sys_col == system, code_col == code)
        elif code:
            unit_match = code_col == code if unit_col is None else or_(code_col == code,
                                                                        unit_col == code)
            pred = and_(pred, unit_match)
    return pred


# -- clause compilation --------------------------------------------------------------------------


class Compiler:
    def __init__(self, ctx: CompileContext) -> None:
        self.ctx = ctx
        self.reg = registry()
        self.depth = 0

    def clauses(self, res_type: str, clauses: list[Clause]) -> ColumnElement[bool]:
        return and_(true(), *self.clause_list(res_type, clauses))

    def clause_list(self, res_type: str, clauses: list[Clause]) -> list[ColumnElement[bool]]:
        """One predicate over `r` per clause (none for an ignored unknown parameter)."""
        clauses, lead, carried = self._carry_to_lead(res_type, clauses)
        preds = []
        for c in clauses:
            # the pk bound holds for this resource's own index rows only (not chains, _has)
            plain = c.chain is None and c.has is None and c.modifier not in ("not", "not-in",
                                                                             "missing")
            _BOUNDS.append((self.ctx.pk_after, self.ctx.pk_before) if plain else (None, None))
            _CARRIED.append(carried if c is lead else [])
            try:
                p = self.clause(res_type, c)
            finally:
                _BOUNDS.pop()
                _CARRIED.pop()
            if p is not None:
                preds.append(p)
        return preds

    def _carry_to_lead(self, res_type: str, clauses: list[Clause]
                     ) -> tuple[list[Clause], Clause | None, list[ColumnElement[bool]]]:
        """Token rows carry their resource's clinical date (fhir_profiles/search/
        clinical-date.json, its earliest start and latest end): a `ge`, `gt`, `le` or `lt`
        clause on that parameter is then a condition on the rows of the first plain token
        clause, the same test the date index would make of the resource's date rows. They
        carry its status codes too (carried-status.json): a plain or `:not` clause of codes
        on such a parameter is a condition on those rows as well (`_carried_status`)."""
        carried = clinical_dates().get(res_type)
        statuses = carried_statuses().get(res_type, [])
        if carried is None and not statuses:
            return clauses, None, []
        candidates = [c for c in clauses if c.chain is None and c.has is None
                      and c.modifier in (None, "in") and c.name not in ("_id", "_lastUpdated")
                      and (sp := self.reg.get(res_type, c.name)) is not None
                      and sp.type == "token" and not sp.union_of]
        # a status clause leads only when nothing else can (it is the larger range)
        lead = next((c for c in candidates if c.name not in statuses),
                    candidates[0] if candidates else None)
        if lead is None:
            return clauses, None, []
        kept, conds = [], []
        for c in clauses:
            if c is not lead and c.chain is None and c.has is None:
                if carried is not None and c.name == carried and c.modifier is None \
                        and len(c.values) == 1:
                    prefix, lo, hi = _date_value(c.values[0])
                    if prefix in ("ge", "gt", "le", "lt"):
                        conds.append(_range_pred(idx_token.c.low, idx_token.c.high, prefix,
                                                 lo, hi))
                        continue
                if c.name in statuses and c.modifier in (None, "not") and c.values and all(
                        v and "|" not in v and "\\" not in v for v in c.values):
                    column = (idx_token.c.status1, idx_token.c.status2)[statuses.index(c.name)]
                    conds.append(_carried_status(column, res_type, c))
                    continue
            kept.append(c)
        return kept, lead, conds

    def clause(self, res_type: str, c: Clause) -> ColumnElement[bool] | None:
        if c.has is not None:
            return self._has(res_type, c)
        if c.modifier == "missing" and c.chain is None and c.values not in (["true"],
                                                                            ["false"]):
            raise FhirError.of(400, "invalid", f"{c.raw or c.name} takes true or false")
        if c.name in ("_id", "_lastUpdated") and c.modifier == "missing":
            # columns of every resource: never missing
            return false() if c.values and c.values[0] == "true" else true()
        if c.name in ("_id", "_lastUpdated") and c.modifier not in (None, "not") or \
                c.name == "_lastUpdated" and c.modifier is not None:
            raise FhirError.of(400, "not-supported",
                               f"modifier ':{c.modifier}' is not supported on '{c.name}'")
        if c.name == "_id":
            ids = [unescape(v) for v in c.values]
            pred = r.c.id.in_(ids)
            return not_(pred) if c.modifier == "not" else pred
        if c.name == "_lastUpdated":
            preds = []
            for v in c.values:
                prefix, lo, hi = _date_value(v)
                preds.append(_range_pred(r.c.last_updated, r.c.last_updated, prefix, lo, hi))
            return or_(*preds)
        sp = self.reg.get(res_type, c.name)
        if sp is None:
            self.ctx.unknown(res_type, c.raw or c.name)
            return None
        if sp.union_of and sp.target_filter is None:
            parts = [self.clause(res_type, replace(c, name=q)) for q in sp.union_of]
            negative = c.modifier in ("not", "not-in") or (
                c.modifier == "missing" and bool(c.values) and c.values[0] == "true")
            return (and_ if negative else or_)(*(p for p in parts if p is not None))
        if c.chain is not None:
            return self._chain(res_type, sp, c)
        if c.modifier == "missing":
            table = _TABLES[sp.type]
            conds = [table.c.target_type == sp.target_filter] if sp.target_filter else []
            exists = r.c.pk.in_(_in_index(table, res_type, sp.index_params()[0], *conds))
            missing = c.values and c.values[0] == "true"
            return not_(exists) if missing else exists
        return self._values(res_type, sp, c)

    def _values(self, rt: str, sp: SearchParam, c: Clause) -> ColumnElement[bool]:
        t, mod = sp.type, c.modifier
        values = c.values
        if t == "token":
            if mod in (None, "not"):
                preds = [_token_pred(idx_token, v) for v in values]
                sub = _in_index(idx_token, rt, sp.code, or_(*preds))
                return not_(r.c.pk.in_(sub)) if mod == "not" else r.c.pk.in_(sub)
            if mod == "text":
                preds = [or_(idx_token.c.text.like(_like_escape(fold(unescape(v))) + "%",
                                                   escape="\\"),
                             idx_token.c.text.like("% " + _like_escape(fold(unescape(v))) + "%",
                                                   escape="\\"))
                         for v in values]
                return r.c.pk.in_(_in_index(idx_token, rt, sp.code, or_(*preds)))
            if mod in ("in", "not-in"):
                preds = []
                for url in values:
                    concepts = self.ctx.valuesets.get(unescape(url))
                    if concepts is None:
                        raise FhirError.of(400, "not-found", f"ValueSet '{url}' is not known")
                    preds += _concept_preds(concepts)
                sub = _in_index(idx_token, rt, sp.code, or_(false(), *preds))
                return r.c.pk.in_(sub) if mod == "in" else not_(r.c.pk.in_(sub))
            if mod == "of-type":
                preds = []
                for v in values:
                    parts = split_escaped(v, "|")
                    if len(parts) != 3:
                        raise FhirError.of(400, "invalid",
                                           ":of-type takes 'system|code|value'")
                    preds.append(and_(idx_token.c.system == f"{parts[0]}|{parts[1]}",
                                      idx_token.c.code == parts[2]))
                return r.c.pk.in_(_in_index(idx_token, rt, sp.code + ":of-type", or_(*preds)))
            raise _bad_modifier(sp, mod)
        if t == "string":
            if mod is None:
                preds = [idx_string.c.value.like(_like_escape(fold(unescape(v))) + "%",
                                                 escape="\\") for v in values]
            elif mod == "exact":
                preds = [idx_string.c.exact == unescape(v) for v in values]
            elif mod == "contains":
                preds = [idx_string.c.value.like("%" + _like_escape(fold(unescape(v))) + "%",
                                                 escape="\\") for v in values]
            else:
                raise _bad_modifier(sp, mod)
            return r.c.pk.in_(_in_index(idx_string, rt, sp.code, or_(*preds)))
        if t == "date":
            if mod is not None:
                raise _bad_modifier(sp, mod)
            preds = []
            for v in values:
                prefix, lo, hi = _date_value(v)
                preds.append(_range_pred(idx_date.c.low, idx_date.c.high, prefix, lo, hi))
            return r.c.pk.in_(_in_index(idx_date, rt, sp.code, or_(*preds)))
        if t == "number":
            if mod is not None:
                raise _bad_modifier(sp, mod)
            preds = [_number_pred(idx_number.c.value, v) for v in values]
            return r.c.pk.in_(_in_index(idx_number, rt, sp.code, or_(*preds)))
        if t == "quantity":
            if mod is not None:
                raise _bad_modifier(sp, mod)
            preds = [_quantity_pred(idx_quantity, v, unit_col=idx_quantity.c.unit)
                     for v in values]
            return r.c.pk.in_(_in_index(idx_quantity, rt, sp.code, or_(*preds)))
        if t == "uri":
            if mod is None:
                preds = [idx_uri.c.value == unescape(v) for v in values]
            elif mod == "below":
                preds = [idx_uri.c.value.like(_like_escape(unescape(v)) + "%", escape="\\")
                         for v in values]
            elif mod == "above":
                preds = [literal(unescape(v)).like(idx_uri.c.value + "%") for v in values]
            else:
                raise _bad_modifier(sp, mod)
            return r.c.pk.in_(_in_index(idx_uri, rt, sp.code, or_(*preds)))
        if t == "reference":
            return self._reference(rt, sp, c)
        if t == "composite":
            return self._composite(rt, sp, c)
        raise FhirError.of(400, "not-supported", f"search on '{sp.code}' is not supported")

    def _reference(self, rt: str, sp: SearchParam, c: Clause) -> ColumnElement[bool]:
        mod = c.modifier
        if mod == "identifier":
            preds = [_token_pred(idx_token, v) for v in c.values]
            return r.c.pk.in_(_in_index(idx_token, rt, sp.index_params()[0] + ":identifier",
                                        or_(*preds)))
        if mod is not None and mod not in sp.targets and not (mod[:1].isupper()):
            raise _bad_modifier(sp, mod)
        preds = []
        x = idx_reference
        if sp.target_filter:
            mod = sp.target_filter
        for raw in c.values:
            v = unescape(raw)
            parsed = parse_reference(v)
            if parsed is not None and (parsed.local or v.startswith("http")):
                conds = [x.c.target_type == parsed.type, x.c.target_id == parsed.id]
                if not parsed.local:  # absolute: match the URL, or a local copy of the target
                    preds.append(x.c.url == v)
                    # a canonical without its version matches every version
                    preds.append(x.c.url.like(_like_escape(v) + "|%", escape="\\"))
                preds.append(and_(*conds))
            elif v.startswith(("http://", "https://", "urn:")):
                preds.append(x.c.url == v.split("|")[0] if "|" not in v else x.c.url == v)
                preds.append(x.c.url.like(_like_escape(v) + "|%", escape="\\"))
            else:
                cond = x.c.target_id == v
                if mod:
                    cond = and_(cond, x.c.target_type == mod)
                preds.append(cond)
        pred = or_(*preds)
        if sp.target_filter:
            pred = and_(pred, x.c.target_type == sp.target_filter)
        return r.c.pk.in_(_in_index(x, rt, sp.index_params()[0], pred))

    def _composite(self, rt: str, sp: SearchParam, c: Clause) -> ColumnElement[bool]:
        x = idx_composite
        preds = []
        second = sp.components[1].type
        for v in c.values:
            parts = split_escaped(v.replace("\\$", "\x00"), "$")
            if len(parts) != 2:
                raise FhirError.of(400, "invalid",
                                   f"composite '{sp.code}' takes 'first$second', got '{v}'")
            first_v, second_v = (p.replace("\x00", "$") for p in parts)
            tok = split_escaped(first_v, "|")
            p1 = (x.c.code1 == tok[0] if len(tok) == 1
                  else and_(x.c.code1 == tok[1], x.c.system1 == tok[0]) if tok[0]
                  else x.c.code1 == tok[1])
            if second == "token":
                t2 = split_escaped(second_v, "|")
                p2 = (x.c.code2 == t2[0] if len(t2) == 1
                      else and_(x.c.code2 == t2[1], x.c.system2 == t2[0]) if t2[0]
                      else x.c.code2 == t2[1])
            elif second in ("quantity", "number"):
                p2 = _quantity_pred(x, second_v, num_col=x.c.num2, sys_col=x.c.system2,
                                    code_col=x.c.code2)
            elif second == "date":
                prefix, lo, hi = _date_value(second_v)
                p2 = _range_pred(x.c.low2, x.c.high2, prefix, lo, hi)
            elif second == "string":
                p2 = x.c.code2.like(_like_escape(fold(second_v)) + "%", escape="\\")
            else:
                p2 = x.c.code2 == second_v
            preds.append(and_(p1, p2))
        return r.c.pk.in_(_in_index(x, rt, sp.code, or_(*preds)))

    def _chain(self, rt: str, sp: SearchParam, c: Clause) -> ColumnElement[bool]:
        if sp.type != "reference":
            raise FhirError.of(400, "invalid", f"'{sp.code}' is not a reference: cannot chain")
        assert c.chain is not None
        targets = [c.modifier] if c.modifier else list(sp.targets)
        if sp.target_filter:
            targets = [sp.target_filter]
        name, dot, rest = c.chain.partition(".")
        pname, _, mod = name.partition(":")
        inner = Clause(pname, mod or None, c.values, chain=rest if dot else None,
                       raw=c.chain)
        preds = []
        for target in targets:
            if pname not in ("_id", "_lastUpdated") and self.reg.get(target, pname) is None:
                continue
            ids = self.matching(target, inner, column="id")
            preds.append(and_(idx_reference.c.target_type == target,
                              idx_reference.c.target_id.in_(ids)))
        if not preds:
            raise FhirError.of(400, "invalid",
                               f"no target type of '{sp.code}' has a parameter '{pname}'")
        return r.c.pk.in_(_in_index(idx_reference, rt, sp.index_params()[0], or_(*preds)))

    def matching(self, res_type: str, clause: Clause, column: str = "pk") -> Select[Any]:
        """An uncorrelated SELECT of `column` over live `res_type` resources matching `clause`
        (chains and _has); its `r` shadows the outer query's."""
        _BOUNDS.append((None, None))
        try:
            pred = self.clause(res_type, clause)
        finally:
            _BOUNDS.pop()
        return (
            select(r.c[column])
            .where(r.c.res_type == res_type, ~r.c.deleted, pred if pred is not None else true())
            .correlate(None)
        )

    def _has(self, rt: str, c: Clause) -> ColumnElement[bool]:
        assert c.has is not None
        src_type, ref_param, rest = c.has
        sp = self.reg.get(src_type, ref_param)
        if sp is None or sp.type != "reference":
            raise FhirError.of(400, "invalid",
                               f"_has: '{ref_param}' is not a reference parameter of {src_type}")
        if rest.startswith("_has:"):
            parts = rest.split(":", 3)
            if len(parts) != 4 or not all(parts[1:]):
                raise FhirError.of(400, "invalid",
                                   f"_has must be '_has:Type:reference:param', got '{rest}'")
            inner = Clause("_has", None, c.values, has=(parts[1], parts[2], parts[3]), raw=rest)
        else:
            name, dot, chain = rest.partition(".")
            pname, _, mod = name.partition(":")
            inner = Clause(pname, mod or None, c.values, chain=chain if dot else None, raw=rest)
        x = idx_reference
        ids = select(x.c.target_id).where(
            x.c.res_type == src_type, x.c.param == sp.index_params()[0], x.c.target_type == rt,
            x.c.res_pk.in_(self.matching(src_type, inner)),
        )
        return r.c.id.in_(ids)


def _concept_preds(concepts: list[tuple[str | None, str | None]]) -> list[ColumnElement[bool]]:
    by_system: dict[str | None, list[str]] = {}
    whole: list[str] = []
    for system, code in concepts:
        if code is None and system is not None:
            whole.append(system)
        elif code is not None:
            by_system.setdefault(system, []).append(code)
    preds: list[ColumnElement[bool]] = [idx_token.c.system.in_(whole)] if whole else []
    groups = []
    for system, codes in by_system.items():
        cond = idx_token.c.code.in_(codes)
        groups.append(and_(idx_token.c.system == system, cond) if system else cond)
    if len(groups) > 1:
        # one range of the (res_type, param, code, ...) index for every code, the systems
        # checked on its rows: an OR of per-system conditions is planned by PostgreSQL as a
        # bitmap OR with a heap fetch per row, and the code index stays covering
        every = [c for codes in by_system.values() for c in codes]
        groups = [and_(idx_token.c.code.in_(every), opaque(or_(*groups)))]
    return preds + groups


def _bad_modifier(sp: SearchParam, mod: str | None) -> FhirError:
    return FhirError.of(400, "not-supported",
                        f"modifier ':{mod}' is not supported on {sp.type} parameter '{sp.code}'")


_TABLES: dict[str, Any] = {
    "token": idx_token, "string": idx_string, "date": idx_date, "reference": idx_reference,
    "quantity": idx_quantity, "number": idx_number, "uri": idx_uri, "composite": idx_composite,
}


# -- sorting -------------------------------------------------------------------------------------


def sort_expression(res_type: str, name: str, descending: bool) -> ColumnElement[Any]:
    """A scalar expression giving each resource its sort value for `name`."""
    if name == "_id":
        return r.c.id
    if name == "_lastUpdated":
        return r.c.last_updated
    sp = registry().get(res_type, name)
    if sp is None or sp.type in ("composite",):
        raise FhirError.of(400, "not-supported", f"cannot sort {res_type} by '{name}'")
    names = sp.index_params()
    t = _TABLES[sp.type]
    agg = func.max if descending else func.min
    column = {
        "date": "high" if descending else "low",
        "token": "code",
        "reference": "target_id",
    }.get(sp.type, "value")
    col = t.c[column]
    # No `res_type` term: `res_pk` implies it, and with it SQLite (without ANALYZE statistics)
    # prefers the covering (res_type, param, ...) index and scans every row of the type for
    # each resource sorted (seconds for a few thousand Observations).
    return (
        select(agg(col))
        .where(t.c.res_pk == r.c.pk, t.c.param.in_(names))
        .scalar_subquery()
    )


def keyset_condition(keys: list[tuple[ColumnElement[Any], bool]], values: list[Any],
                     pk_value: int, backwards: bool) -> ColumnElement[bool]:
    """Rows strictly after (or before) the cursor row in ORDER BY keys (NULLs last), pk."""
    ors: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for (expr, desc), v in zip(keys, values, strict=True):
        forward_gt = (expr < v) if desc else (expr > v)
        forward_lt = (expr > v) if desc else (expr < v)
        if not backwards:
            after = false() if v is None else or_(forward_gt, expr.is_(None))
        else:
            after = expr.is_not(None) if v is None else forward_lt
        ors.append(and_(*equal, after))
        equal.append(expr.is_(None) if v is None else expr == v)
    ors.append(and_(*equal, (r.c.pk < pk_value) if backwards else (r.c.pk > pk_value)))
    return or_(*ors)


def order_by(keys: list[tuple[ColumnElement[Any], bool]], backwards: bool) -> list[Any]:
    out: list[Any] = []
    for expr, desc in keys:
        d = desc != backwards
        nulls_first = backwards
        out.append(expr.is_(None).desc() if nulls_first else expr.is_(None))
        out.append(expr.desc() if d else expr.asc())
    out.append(r.c.pk.desc() if backwards else r.c.pk.asc())
    return out
