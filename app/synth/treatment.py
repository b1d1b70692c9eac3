"""Which medicines a person takes, since when, and which they stopped.

Treatment rules are data (``medicines.json``): per condition, a probability and weighted options
(a set of medicines, where ``one_of`` picks one of several products); a ``group`` keeps one
medicine per class, and a rule's ``tag`` records a fact such as the type 2 diabetes treatment step.
Deliberate gaps are rules with probability < 1 (e.g. 20% of ASCVD patients never start a statin).
"Filler" rules add the other chronic medicines of older and multimorbid people, calibrated on
Belgian polypharmacy (13.5% of people on >= 5 chronic medicines, 3.1% on >= 10; IMA-AIM 2021).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import cache

from app.synth.morbidity import ConditionFact
from app.synth.params import Json, band_index, clinical_data, cumulative, medicine_data


@dataclass(slots=True)
class MedFact:
    """One medicine line of one person."""

    key: str
    item: Json
    start: int
    end: int | None = None
    reason: str | None = None
    group: str | None = None
    acute: bool = False
    gap_factor: float = 1.0

    @property
    def active(self) -> bool:
        return self.end is None


@dataclass(slots=True)
class TreatmentPlan:
    """A person's medicine lines and the facts the rules tagged."""

    medicines: list[MedFact] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def has_active(self, group: str) -> bool:
        return any(m.active and m.group == group for m in self.medicines)


@cache
def _edges() -> list[int]:
    return list(clinical_data()["age_band_edges"]["value"])


def _pick(rng: random.Random, options: dict[str, float]) -> str:
    keys = list(options)
    return keys[bisect_left(cumulative(list(options.values())), rng.random())]


def _resolve(rng: random.Random, entry: str | Json) -> tuple[str, dict[str, float] | None]:
    if isinstance(entry, str):
        return entry, None
    alternatives: dict[str, float] = entry["one_of"]
    return _pick(rng, alternatives), alternatives


def _applies(rule: Json, present: dict[str, ConditionFact], age: int, sex: str) -> bool:
    if "when_any" in rule and not any(k in present for k in rule["when_any"]):
        return False
    if "when_all" in rule and not all(k in present for k in rule["when_all"]):
        return False
    if "unless_any" in rule and any(k in present for k in rule["unless_any"]):
        return False
    return bool(age >= rule.get("min_age", 0) and rule.get("sex", sex) == sex)


def _probability(rule: Json, age: int, sex: str, n_chronic: int, frail: bool, z: float) -> float:
    if "probability_by_age_band" not in rule:
        return float(rule["probability"])
    spec = medicine_data()["filler_multimorbidity_boost"]
    p = rule["probability_by_age_band"][band_index(_edges(), age)]
    p *= (1 + spec["value"] * n_chronic) * math.exp(spec["latent_frailty"] * z)
    if frail:
        p *= spec["frailty_factor"]
    f = rule.get("female_factor")
    if f:
        p *= 2 * f / (1 + f) if sex == "female" else 2 / (1 + f)
    return float(p)


def plan_treatment(
    rng: random.Random,
    conditions: dict[str, ConditionFact],
    age: int,
    sex: str,
    birth: int,
    today: int,
    window_start: int,
    frailty_z: float = 0.0,
) -> TreatmentPlan:
    """Apply the treatment and filler rules, then add switches, stops and acute courses."""
    data = medicine_data()
    catalogue = data["catalogue"]
    history = data["history"]
    dispensing = data["dispensing"]
    present = {k: c for k, c in conditions.items() if c.active and c.recorded}
    n_chronic = len(present)
    frail = "frailty" in present
    adult = birth + int(18 * 365.25)
    plan = TreatmentPlan()
    taken: set[str] = set()
    for rule in data["rules"] + data["fillers"]:
        group = rule.get("group")
        if group in taken or not _applies(rule, present, age, sex):
            continue
        if "requires_group" in rule and not plan.has_active(rule["requires_group"]):
            continue
        if rng.random() >= _probability(rule, age, sex, n_chronic, frail, frailty_z):
            if rule.get("gap_blocks_group"):
                taken.add(group)  # a deliberate gap: no later rule fills this class
            continue
        taken.add(group)
        options = rule["options"]
        option = options[bisect_left(cumulative([o["weight"] for o in options]), rng.random())]
        if "facts_tag" in rule:
            plan.tags[rule["facts_tag"]] = option["tag"]
        reasons = [present[k] for k in rule.get("when_any", ()) if k in present]
        reason = min(reasons, key=lambda c: c.onset) if reasons else None
        if reason is not None:
            start = reason.onset + int(rng.random() * 365)
            if rule.get("start_in_window_share", 0) > rng.random() and reason.onset < window_start:
                start = window_start + int(rng.random() * (today - 30 - window_start))
        else:
            start = today - 30 - int(rng.random() * min(3650, max(1, today - 30 - adult)))
        start = max(min(start, today - 7), adult if age >= 18 else birth)
        stopped = rule.get("stoppable", True) and rng.random() < history["stopped_probability"]
        for i, entry in enumerate(option["medicines"]):
            key, alternatives = _resolve(rng, entry)
            if i and rule.get("stepwise"):  # add-on medicines come later than the first one
                start = min(start + int(rng.random() * 0.6 * (today - start)), today - 7)
            if any(m.key == key and m.active for m in plan.medicines):
                continue
            poor = rng.random() < dispensing["poor_adherence_share"]
            lo, hi = dispensing["poor_gap_factor" if poor else "good_gap_factor"]
            med = MedFact(
                key,
                catalogue[key],
                start,
                None,
                reason.key if reason else None,
                group,
                False,
                lo + rng.random() * (hi - lo),
            )
            if stopped and start < today - 90:
                med.end = start + 60 + int(rng.random() * (today - 30 - start - 60))
            elif (
                alternatives
                and len(alternatives) > 1
                and rng.random() < history["switched_probability"]
            ):
                old_key = _pick(rng, {k: w for k, w in alternatives.items() if k != key})
                old_start = max(start - 180 - int(rng.random() * 1500), adult)
                if old_start < start:
                    plan.medicines.append(
                        MedFact(old_key, catalogue[old_key], old_start, start, med.reason, group)
                    )
            plan.medicines.append(med)
    _acute_courses(rng, plan, data, age, today, window_start)
    return plan


def _acute_courses(
    rng: random.Random, plan: TreatmentPlan, data: Json, age: int, today: int, window_start: int
) -> None:
    spec = data["acute_courses"]
    years = (today - window_start) / 365.25
    rate = spec["courses_per_year_by_age_band"][band_index(_edges(), age)] * years
    for _ in range(poisson(rng, rate)):
        key = _pick(rng, spec["options"])
        item = data["catalogue"][key]
        start = window_start + int(rng.random() * (today - window_start - item["pack_days"] - 2))
        plan.medicines.append(
            MedFact(key, item, start, start + item["pack_days"], None, None, True)
        )


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (inversion for small means, normal approximation above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, lam**0.5)))
    k, p = 0, math.exp(-lam)
    s = p
    u = rng.random()
    while u > s:
        k += 1
        p *= lam / k
        s += p
    return k
