"""A person's usual measurement values, from which every Observation value is drawn.

Values follow conditions and treatment: HbA1c by the type 2 diabetes treatment step, LDL lowered
from the day a statin (and ezetimibe) starts, blood pressure by hypertension and its treatment,
eGFR by CKD stage (recorded or not), albuminuria by diabetes and CKD, BMI by obesity. Value
models and their sources are in ``clinical.json`` (``observations``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cache

from app.synth.morbidity import ASCVD, ConditionFact
from app.synth.params import Json, band_index, clinical_data
from app.synth.treatment import TreatmentPlan

ANTIHYPERTENSIVE = ("raas", "ccb", "thiazide", "betablocker", "loop", "mra")


@cache
def observation_spec() -> Json:
    spec: Json = clinical_data()["observations"]
    return spec


@dataclass(slots=True)
class Physiology:
    """Usual values of one person and the days their treatments change them."""

    hba1c: float
    hba1c_max: float
    t2d_onset: int | None
    ifcc: bool
    ldl: float
    lipid_cuts: list[tuple[int, int | None, float]]  # (start, end, remaining fraction) per drug
    sbp: float
    sbp_untreated: float
    bp_treated_from: int | None
    age: int
    egfr: float
    egfr_range: tuple[float, float]
    lab_2021: bool
    uacr: float
    uacr_range: tuple[float, float]
    bmi: float
    bmi_range: tuple[float, float]
    height: float
    smoking: str
    lab: int


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def draw_physiology(
    rng: random.Random,
    conditions: dict[str, ConditionFact],
    plan: TreatmentPlan,
    age: int,
    sex: str,
) -> Physiology:
    """Draw the usual values of a person (all conditions count, recorded or not)."""
    spec = observation_spec()
    active = {k for k, c in conditions.items() if c.active}
    gauss = rng.gauss
    # HbA1c
    h = spec["hba1c"]
    if "t2d" in active:
        mean, sd = h["t2d_by_step"][plan.tags.get("t2d_step", "metformin")]
    elif "prediabetes" in active:
        mean, sd = h["prediabetes"]["mean"], h["prediabetes"]["sd"]
    else:
        mean, sd = h["no_diabetes"]["mean"], h["no_diabetes"]["sd"]
    hba1c = _clip(gauss(mean, sd), 4.3, 13.0)
    if "t2d" not in active:
        hba1c = min(hba1c, 6.4)
    # LDL
    ldl_spec = spec["ldl"]
    u = ldl_spec["untreated"]
    base = min(u["max_base"], u["base"] + u["per_year_over_20"] * max(0, age - 20))
    if "dyslipidaemia" in active or (
        active & set(ASCVD) and rng.random() < u["ascvd_without_lipid_code_raised_share"]
    ):
        base += u["dyslipidaemia_extra"]
    ldl = max(u["floor"], gauss(base, u["sd"]))
    red = ldl_spec["statin_reduction"]
    cuts: list[tuple[int, int | None, float]] = []
    for m in plan.medicines:
        if m.group == "statin":
            cuts.append((m.start, m.end, 1 - red[m.item.get("intensity", "moderate")]))
        elif m.group == "ezetimibe":
            cuts.append((m.start, m.end, 1 - red["ezetimibe"]))
    # blood pressure
    b = spec["blood_pressure"]
    n = b["normotensive"]
    if "hypertension" in active:
        untreated = gauss(b["untreated_hypertension"]["mean"], b["untreated_hypertension"]["sd"])
        key = (
            "treated_controlled"
            if rng.random() < b["treated_controlled_share"]["value"]
            else "treated_uncontrolled"
        )
        treated = gauss(b[key]["mean"], b[key]["sd"])
    else:
        mean_sbp = min(n["max_mean"], n["systolic_base"] + n["per_year_over_20"] * max(0, age - 20))
        untreated = treated = min(gauss(mean_sbp, n["sd"]), 139.0)
    starts = [m.start for m in plan.medicines if m.group in ANTIHYPERTENSIVE and m.active]
    # eGFR
    e = spec["egfr"]
    if "ckd" in conditions and conditions["ckd"].active:
        lo, hi = e["stages"][conditions["ckd"].variant_key]
        egfr_range = (lo - 2.0, hi + 2.0)
        egfr = lo + rng.random() * (hi - lo)
    else:
        egfr_range = (e["normal"]["min"], 130.0)
        egfr = _clip(
            gauss(e["normal"]["intercept"] + e["normal"]["per_year"] * age, e["normal"]["sd"]),
            *egfr_range,
        )
    # albuminuria
    a = spec["uacr"]
    cat = "A1"
    for key in ("ckd", "t2d"):
        if key in active:
            r = rng.random()
            cat = "A3" if r < a[key]["A3"] else "A2" if r < a[key]["A2"] + a[key]["A3"] else "A1"
            break
    if cat == "A1":
        uacr_range = (0.5, float(a["normal"]["max"]))
        uacr = _clip(
            math.exp(gauss(math.log(a["normal"]["median"]), a["normal"]["sigma"])), *uacr_range
        )
    else:
        lo, hi = a["categories"][cat]
        uacr_range = (float(lo), float(hi))
        uacr = lo + (hi - lo) * rng.random() ** 2
    # BMI and height
    bm = spec["bmi"]
    if "obesity" in active:
        bmi_range = (bm["obese"]["min"], bm["obese"]["max"])
        bmi = min(
            bm["obese"]["min"] + rng.expovariate(1 / bm["obese"]["mean_excess"]), bm["obese"]["max"]
        )
    else:
        bmi_range = (bm["non_obese"]["min"], bm["non_obese"]["max"])
        shift = bm["t2d_shift"] if "t2d" in active else 0.0
        bmi = _clip(
            gauss(bm["non_obese"]["mean"] + shift, bm["non_obese"]["sd"]),
            bm["non_obese"]["min"],
            bm["non_obese"]["max"],
        )
    hm, hs = spec["weight"]["height_cm"][sex]
    height = (
        gauss(hm, hs) - spec["weight"]["height_cm"]["shrink_per_year_over_50"] * max(0, age - 50)
    ) / 100
    return Physiology(
        hba1c=hba1c,
        hba1c_max=h["range"][1] if "t2d" in active else 6.4,
        t2d_onset=conditions["t2d"].onset if "t2d" in active else None,
        ifcc=rng.random() < h["ifcc_share"]["value"],
        ldl=ldl,
        lipid_cuts=cuts,
        sbp=treated,
        sbp_untreated=untreated,
        bp_treated_from=min(starts) if starts else None,
        age=age,
        egfr=egfr,
        egfr_range=egfr_range,
        lab_2021=rng.random() < e["switch_to_2021"]["lab_share"],
        uacr=uacr,
        uacr_range=uacr_range,
        bmi=bmi,
        bmi_range=bmi_range,
        height=height,
        smoking=_smoking(rng, active, age),
        lab=int(rng.random() * 2),
    )


def _smoking(rng: random.Random, active: set[str], age: int) -> str:
    s = observation_spec()["smoking"]
    if "copd" in active:
        p = s["copd"]
        daily, occasional, ex = p["daily"], p["occasional"], p["ex"]
    elif active & set(ASCVD):
        p = s["ascvd"]
        daily, occasional, ex = p["daily"], p["occasional"], p["ex"]
    else:
        p = s["adult"]
        edges = list(clinical_data()["age_band_edges"]["value"])
        daily, occasional = p["daily"], p["occasional"]
        ex = p["ex_by_age_band"][band_index(edges, age)]
        if age < 18:
            daily, occasional = s["minor"]["daily"], s["minor"]["occasional"]
    r = rng.random()
    return (
        "daily"
        if r < daily
        else "occasional"
        if r < daily + occasional
        else "ex"
        if r < daily + occasional + ex
        else "never"
    )
