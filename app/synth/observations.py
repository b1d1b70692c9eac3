"""Observations over the reference window: lab panels at monitoring visits (HbA1c, LDL, eGFR,
urine albumin/creatinine), blood pressure and weight/BMI at GP visits, one smoking status.

Codes, units (UCUM) and the official observation categories come from ``clinical.json``; values
from the person's ``Physiology``. Labs are performed by one of the region's laboratories, vital
signs by the GP.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from app.synth.context import LOINC, OBS_CATEGORY, SNOMED, UCUM, PatientContext, Resource
from app.synth.encounters import Visit
from app.synth.morbidity import ASCVD, ConditionFact
from app.synth.params import clinical_data
from app.synth.physiology import Physiology, observation_spec


@dataclass(slots=True)
class LastValues:
    """The latest value of each measure, for goal achievement."""

    hba1c: float | None = None
    ldl: float | None = None
    bp: tuple[int, int] | None = None
    seen: dict[str, int] = field(default_factory=dict)


def _cat(code: str, display: str) -> list[Resource]:
    return [{"coding": [{"system": OBS_CATEGORY, "code": code, "display": display}]}]


@cache
def _codes() -> dict[str, Any]:
    s = observation_spec()

    def cc(code: str, display: str) -> Resource:
        return {"coding": [{"system": LOINC, "code": code, "display": display}]}

    e, b = s["egfr"], s["blood_pressure"]
    out: dict[str, Any] = {
        "ngsp": cc(s["hba1c"]["ngsp"]["code"], s["hba1c"]["ngsp"]["display"]),
        "ifcc": cc(s["hba1c"]["ifcc"]["code"], s["hba1c"]["ifcc"]["display"]),
        "ldl_calc": cc(s["ldl"]["calculated"]["code"], s["ldl"]["calculated"]["display"]),
        "ldl_direct": cc(s["ldl"]["direct"]["code"], s["ldl"]["direct"]["display"]),
        "egfr": cc(e["ckd_epi"]["code"], e["ckd_epi"]["display"]),
        "egfr2021": cc(e["ckd_epi_2021"]["code"], e["ckd_epi_2021"]["display"]),
        "uacr": cc(s["uacr"]["code"], s["uacr"]["display"]),
        "bp": cc(b["panel"]["code"], b["panel"]["display"]),
        "sys": cc(b["systolic"]["code"], b["systolic"]["display"]),
        "dia": cc(b["diastolic"]["code"], b["diastolic"]["display"]),
        "bmi": cc(s["bmi"]["code"], s["bmi"]["display"]),
        "weight": cc(s["weight"]["code"], s["weight"]["display"]),
        "smoking": cc(s["smoking"]["code"], s["smoking"]["display"]),
    }
    for key, (code, display) in s["smoking"]["answers"].items():
        out[f"smoking:{key}"] = {"coding": [{"system": SNOMED, "code": code, "display": display}]}
    out["lab"] = _cat("laboratory", "Laboratory")
    out["vital"] = _cat("vital-signs", "Vital Signs")
    out["social"] = _cat("social-history", "Social History")
    return out


def _qty(value: float, unit: str) -> dict[str, object]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


class ObservationWriter:
    """Builds the Observations of one patient from their visits and physiology."""

    def __init__(
        self, ctx: PatientContext, rng: random.Random, phys: Physiology, labs: list[str]
    ) -> None:
        self.ctx, self.rng, self.phys = ctx, rng, phys
        self.lab_ref = labs[phys.lab]
        self.codes = _codes()
        self.spec = observation_spec()
        self.last = LastValues()
        self.switch_2021 = date.fromisoformat(
            self.spec["egfr"]["switch_to_2021"]["date"]
        ).toordinal()

    def _obs(self, visit: Visit, key: str, category: str, performer: dict[str, str]) -> Resource:
        ctx = self.ctx
        return ctx.add(
            {
                "resourceType": "Observation",
                "id": ctx.new_id("o"),
                "status": "final",
                "category": self.codes[category],
                "code": self.codes[key],
                "subject": ctx.subject(),
                "encounter": {"reference": f"Encounter/{visit.id}"},
                "effectiveDateTime": ctx.cal.instant(visit.day, visit.minute),
                "performer": [performer],
            }
        )

    def lab(self, visit: Visit, key: str, value: float, unit: str) -> None:
        self._obs(visit, key, "lab", {"reference": self.lab_ref})["valueQuantity"] = _qty(
            value, unit
        )
        self.last.seen[key] = visit.day

    def hba1c(self, visit: Visit) -> None:
        h = self.spec["hba1c"]
        lo, hi = h["range"][0], min(h["range"][1], self.phys.hba1c_max)
        mean = self.phys.hba1c
        onset = self.phys.t2d_onset
        if onset is not None and visit.day < onset - 30:  # before the diagnosis
            mean, hi = min(mean, h["prediabetes"]["mean"]), 6.4
        # no diabetic values without a diabetes diagnosis
        value = mean + self.rng.gauss(0, h["within_patient_sd"]["value"])
        v = round(min(max(value, lo), hi), 1)
        self.last.hba1c = v
        if self.phys.ifcc:
            a, b = h["ifcc_conversion"]["value"]
            self.lab(visit, "ifcc", round((v - a) * b), "mmol/mol")
        else:
            self.lab(visit, "ngsp", v, "%")

    def ldl(self, visit: Visit) -> None:
        value = self.phys.ldl
        for start, end, keep in self.phys.lipid_cuts:
            if start <= visit.day and (end is None or visit.day < end):
                value *= keep
        spec = self.spec["ldl"]
        lo, hi = spec["range"]
        value = round(
            min(
                max(
                    lo, value * (1 + self.rng.gauss(0, spec["within_patient_sd_fraction"]["value"]))
                ),
                hi,
            )
        )
        self.last.ldl = value
        key = "ldl_direct" if self.rng.random() < spec["direct_share"]["value"] else "ldl_calc"
        self.lab(visit, key, value, "mg/dL")

    def egfr(self, visit: Visit) -> None:
        lo, hi = self.phys.egfr_range
        sd = self.spec["egfr"]["within_patient_sd"]["value"]
        value = round(min(max(self.phys.egfr + self.rng.gauss(0, sd), lo), hi))
        key = "egfr2021" if self.phys.lab_2021 and visit.day >= self.switch_2021 else "egfr"
        self.lab(visit, key, value, "mL/min/{1.73_m2}")

    def uacr(self, visit: Visit) -> None:
        lo, hi = self.phys.uacr_range
        sd = self.spec["uacr"]["within_patient_sd_fraction"]["value"]
        value = round(min(max(self.phys.uacr * (1 + self.rng.gauss(0, sd)), lo), hi), 1)
        self.lab(visit, "uacr", value, "mg/g")

    def blood_pressure(self, visit: Visit) -> None:
        p, b = self.phys, self.spec["blood_pressure"]
        treated = p.bp_treated_from is not None and visit.day >= p.bp_treated_from
        sbp = (p.sbp if treated else p.sbp_untreated) + self.rng.gauss(
            0, b["within_patient_sd"]["value"]
        )
        d = b["diastolic_model"]
        dbp = d["intercept"] + d["slope"] * sbp - d["age_decline_over_60"] * max(0, p.age - 60)
        dbp += self.rng.gauss(0, d["sd"])
        sys_v, dia_v = round(min(max(sbp, 85), 230)), round(min(max(dbp, 45), 130))
        self.last.bp = (sys_v, dia_v)
        r = self._obs(visit, "bp", "vital", self.ctx.gp())
        r["component"] = [
            {"code": self.codes["sys"], "valueQuantity": _qty(sys_v, "mm[Hg]")},
            {"code": self.codes["dia"], "valueQuantity": _qty(dia_v, "mm[Hg]")},
        ]

    def weight(self, visit: Visit) -> None:
        lo, hi = self.phys.bmi_range
        sd = self.spec["bmi"]["within_patient_sd"]["value"]
        bmi = round(min(max(self.phys.bmi + self.rng.gauss(0, sd), lo), hi), 1)
        self._obs(visit, "bmi", "vital", self.ctx.gp())["valueQuantity"] = _qty(bmi, "kg/m2")
        kg = round(bmi * self.phys.height**2, 1)
        self._obs(visit, "weight", "vital", self.ctx.gp())["valueQuantity"] = _qty(kg, "kg")

    def smoking(self, visit: Visit) -> None:
        r = self._obs(visit, "smoking", "social", self.ctx.gp())
        r["valueCodeableConcept"] = self.codes[f"smoking:{self.phys.smoking}"]


def observation_resources(
    writer: ObservationWriter,
    visits: list[Visit],
    conditions: dict[str, ConditionFact],
    age: int,
) -> LastValues:
    """Add every Observation of the patient; return the latest values."""
    rng = writer.rng
    mon = clinical_data()["monitoring"]
    active = {k for k, c in conditions.items() if c.active and c.recorded}
    t2d, ckd = "t2d" in active, "ckd" in active
    lipid = "dyslipidaemia" in active or bool(active & set(ASCVD))
    renal = t2d or ckd or bool(active & {"hypertension", "heart_failure"})
    cm = bool(active & {"t2d", "ckd", "heart_failure", "af", "dyslipidaemia", *ASCVD})
    pc = mon["panel_contents"]
    p_hba1c = (
        1.0
        if t2d
        else pc["hba1c"]["prediabetes"]
        if "prediabetes" in active
        else pc["hba1c"]["adult_45"]
        if age >= 45
        else 0.0
    )
    p_ldl = pc["ldl"]["t2d"] if t2d else pc["ldl"]["lipid"] if lipid else pc["ldl"]["other"]
    p_egfr = pc["egfr"]["renal"] if renal else pc["egfr"]["other"]
    p_uacr = pc["uacr"]["t2d"] if t2d else pc["uacr"]["ckd"] if ckd else pc["uacr"]["other"]
    bpv, wv = mon["bp_per_visit"], mon["weight_per_visit"]
    adult = age >= 18
    p_bp = (
        bpv["hypertension"]
        if "hypertension" in active
        else bpv["cardiometabolic"]
        if cm
        else bpv["adult_45"]
        if age >= 45
        else bpv["adult"]
        if adult
        else bpv["child"]
    )
    metabolic = bool(active & {"t2d", "obesity", "prediabetes"})
    p_w = (
        wv["heart_failure"]
        if "heart_failure" in active
        else wv["metabolic"]
        if metabolic
        else wv["adult"]
        if adult
        else wv["child"]
    )
    gp_visits = [v for v in visits if v.kind in ("gp", "home")]
    for v in gp_visits:
        if v.panel and adult:
            if rng.random() < p_hba1c:
                writer.hba1c(v)
            if rng.random() < p_ldl:
                writer.ldl(v)
            if rng.random() < p_egfr:
                writer.egfr(v)
            if rng.random() < p_uacr:
                writer.uacr(v)
        if rng.random() < p_bp:
            writer.blood_pressure(v)
        if rng.random() < p_w:
            writer.weight(v)
    smoking_share = observation_spec()["smoking"]["recorded_share"]["value"]
    if adult and gp_visits and rng.random() < smoking_share:
        writer.smoking(gp_visits[int(rng.random() * len(gp_visits))])
    return writer.last
