"""Which chronic conditions a person has, since when, and who recorded them.

Each condition has a prevalence by age band and sex (``clinical.json``, with sources). Conditions
co-occur through two latent factors shared by all conditions of a person, "cardiometabolic" and
"frailty": a person has condition *c* when ``a_c z1 + b_c z2 + sqrt(1 - a_c^2 - b_c^2) e_c``
exceeds the normal quantile of ``1 - p_c(age, sex)``. Whatever the loadings, the marginal
prevalence stays ``p_c``, while diabetes, hypertension, CKD and ASCVD cluster in the same people,
and so do dementia, frailty and heart failure. Two explicit rules follow: prediabetes excludes
type 2 diabetes, and established ASCVD mostly comes with a dyslipidaemia code.

A condition is recorded by the GP (ICPC-2 + ICD-10) or reaches us from a hospital (SNOMED CT),
sometimes both; CKD and obesity are partly unrecorded (present in lab values or BMI only).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from statistics import NormalDist

from app.synth.params import Json, band_index, clinical_data, cumulative

_Z = NormalDist()
ASCVD = ("ihd", "stroke", "pad")


@dataclass(frozen=True, slots=True)
class ConditionModel:
    """Compiled parameters of one condition."""

    key: str
    cut: tuple[tuple[float, ...], tuple[float, ...]]  # [male, female][age band] -> quantile
    a: float
    b: float
    resid: float
    variants: tuple[Json, ...]
    variant_cum: tuple[float, ...]
    hospital_share: float
    recorded: float
    onset_min_age: int
    onset_max_years: int
    admission_at_onset: float
    past: Json | None
    excludes: tuple[str, ...]


@dataclass(slots=True)
class ConditionFact:
    """One condition of one person, before it becomes Condition resources."""

    key: str
    variant: Json
    onset: int
    recorded: bool = True
    hospital: bool = False
    gp_record: bool = True
    active: bool = True
    abatement: int | None = None
    admitted: bool = False

    @property
    def variant_key(self) -> str:
        return str(self.variant.get("key", self.key))


@dataclass(frozen=True, slots=True)
class Morbidity:
    """All compiled condition models plus the shared parameters."""

    edges: tuple[int, ...]
    models: tuple[ConditionModel, ...]
    gp_also_for_hospital: float
    ascvd_dyslipidaemia: float


@cache
def morbidity_model() -> Morbidity:
    """Compile ``clinical.json`` conditions once per process."""
    data = clinical_data()
    models = []
    for key, c in data["conditions"].items():
        prev = c["prevalence"]
        ratio = prev["male_to_female"]
        cuts = []
        for factor in (2 * ratio / (1 + ratio), 2 / (1 + ratio)):
            row = []
            for p in prev["by_age_band"]:
                q = min(p * factor, 0.97)
                row.append(math.inf if q <= 0 else _Z.inv_cdf(1 - q))
            cuts.append(tuple(row))
        a = c["latent_loading"]["cardiometabolic"]
        b = c["latent_loading"]["frailty"]
        models.append(
            ConditionModel(
                key=key,
                cut=(cuts[0], cuts[1]),
                a=a,
                b=b,
                resid=math.sqrt(1 - a * a - b * b),
                variants=tuple(c["variants"]),
                variant_cum=tuple(cumulative([v["weight"] for v in c["variants"]])),
                hospital_share=c["hospital_share"]["value"],
                recorded=c.get("recorded_fraction", {}).get("value", 1.0),
                onset_min_age=c["onset"]["min_age"],
                onset_max_years=c["onset"]["max_years_before_today"],
                admission_at_onset=c.get("admission_at_onset", {}).get("value", 0.0),
                past=c.get("past_episode"),
                excludes=tuple(c.get("excludes", ())),
            )
        )
    return Morbidity(
        edges=tuple(data["age_band_edges"]["value"]),
        models=tuple(models),
        gp_also_for_hospital=data["gp_record_also_for_hospital_share"]["value"],
        ascvd_dyslipidaemia=data["ascvd_dyslipidaemia"]["value"],
    )


def _onset(rng: random.Random, m: ConditionModel, birth: int, age: int, today: int) -> int:
    lo = min(max(m.onset_min_age, age - m.onset_max_years), age)
    years = lo + rng.random() * (age - lo)
    return min(birth + int(years * 365.25), today - 14)


def _source(rng: random.Random, fact: ConditionFact, m: ConditionModel, gp_also: float) -> None:
    if fact.admitted or rng.random() < m.hospital_share:
        fact.hospital = True
        fact.gp_record = rng.random() < gp_also


def draw_conditions(
    rng: random.Random,
    latent: tuple[float, float],
    sex: str,
    birth: int,
    age: int,
    today: int,
    window_start: int,
) -> dict[str, ConditionFact]:
    """The person's conditions (active ones and resolved past episodes), keyed by condition."""
    mm = morbidity_model()
    band = band_index(list(mm.edges), age)
    s = 0 if sex == "male" else 1
    z1, z2 = latent
    out: dict[str, ConditionFact] = {}
    gauss = rng.gauss
    for m in mm.models:
        cut = m.cut[s][band]
        present = cut != math.inf and m.a * z1 + m.b * z2 + m.resid * gauss(0.0, 1.0) > cut
        if present and any(k in out for k in m.excludes):
            present = False
        if present:
            variant = m.variants[bisect_left(m.variant_cum, rng.random())]
            fact = ConditionFact(m.key, variant, _onset(rng, m, birth, age, today))
            fact.recorded = m.recorded >= 1.0 or rng.random() < m.recorded
            fact.admitted = fact.onset >= window_start and rng.random() < m.admission_at_onset
            _source(rng, fact, m, mm.gp_also_for_hospital)
            out[m.key] = fact
        elif m.past and age >= m.past["min_age"] and rng.random() < m.past["probability"]:
            variant = m.variants[bisect_left(m.variant_cum, rng.random())]
            onset = _onset(rng, m, birth, age, today) - 400
            end = onset + 90 + int(rng.random() * max(1, today - 60 - onset - 90))
            fact = ConditionFact(
                m.key, variant, onset, active=False, abatement=min(end, today - 30)
            )
            _source(rng, fact, m, mm.gp_also_for_hospital)
            out[m.key] = fact
    if "dyslipidaemia" not in out:
        ascvd = [out[k] for k in ASCVD if k in out and out[k].active]
        if ascvd and rng.random() < mm.ascvd_dyslipidaemia:
            first = min(f.onset for f in ascvd)
            m = next(m for m in mm.models if m.key == "dyslipidaemia")
            fact = ConditionFact("dyslipidaemia", m.variants[0], min(first + 60, today - 14))
            _source(rng, fact, m, mm.gp_also_for_hospital)
            out["dyslipidaemia"] = fact
    return out
