"""Who lives in the region: the roster of inhabitants (age, sex, address, team, SSIN, language).

The roster is drawn once per region from one random stream so that team membership, GP lists and
SSINs are known before any patient's record is generated; each patient's clinical record then
comes from its own stream (see ``patient.py``), so records can be generated lazily, in any slice.
Age/sex pyramid, origins and names are data in ``leuven.json``.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from app.synth.geography import Sector, Team, sector_weights
from app.synth.identifiers import make_ssin
from app.synth.params import Json, band_index, cumulative, region_data

if TYPE_CHECKING:
    from app.synth.providers import Pharmacy, Professional


@dataclass(slots=True)
class Person:
    """One inhabitant as the roster knows them.

    ``gp`` is the team GP the person consults and ``pharmacy`` their usual pharmacy (both set by
    the provider directory); ``has_gp`` says whether the GP holds their global medical record
    (GMD) and so appears in ``Patient.generalPractitioner``.
    """

    index: int
    id: str
    sex: str
    birth: date
    age: int
    sector: Sector
    team: int
    street: str
    house: str
    origin: str
    language: str
    ssin: str
    has_gp: bool
    gp: Professional | None = field(default=None)
    pharmacy: Pharmacy | None = field(default=None)


def age_on(birth: date, today: date) -> int:
    """Completed years of age on ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def patient_id(index: int) -> str:
    """The deterministic Patient id of roster entry ``index``."""
    return f"p{index:06d}"


class _Pyramid:
    """Sampler for age and sex from the 5-year bands of ``leuven.json``."""

    def __init__(self, data: Json) -> None:
        bands = data["age_pyramid"]["bands"]
        self.bands = [(b["from"], b["to"], b["female"]) for b in bands]
        self.cum = cumulative([b["share"] for b in bands])

    def draw(self, rng: random.Random) -> tuple[int, str]:
        lo, hi, female = self.bands[bisect_left(self.cum, rng.random())]
        age = lo + int(rng.random() * (hi - lo + 1))
        return age, ("female" if rng.random() < female else "male")


class _Origins:
    """Sampler for origin group and preferred language by age band."""

    def __init__(self, data: Json) -> None:
        spec = data["origins"]
        self.edges: list[int] = spec["age_band_edges"]
        items = spec["items"]
        self.keys = [o["key"] for o in items]
        self.cum = [cumulative([o["weights"][b] for o in items]) for b in range(len(self.edges))]
        self.languages = [
            (list(o["languages"]), cumulative(list(o["languages"].values()))) for o in items
        ]

    def draw(self, rng: random.Random, age: int) -> tuple[str, str]:
        k = bisect_left(self.cum[band_index(self.edges, age)], rng.random())
        codes, cum = self.languages[k]
        return self.keys[k], codes[bisect_left(cum, rng.random())]


class _SsinAllocator:
    """Hands out unique sequence numbers 900-998 per birth date (odd men, even women)."""

    def __init__(self, data: Json) -> None:
        rng_spec = data["identifier_ranges"]["ssin_sequence"]
        self.lo, self.hi = rng_spec["min"], rng_spec["max"]
        self.next: dict[tuple[date, int], int] = {}

    def allocate(self, birth: date, sex: str) -> tuple[date, str]:
        parity = 1 if sex == "male" else 0
        while True:
            start = self.lo + ((self.lo % 2) != parity)
            seq = self.next.get((birth, parity), start)
            if seq <= self.hi:
                self.next[(birth, parity)] = seq + 2
                return birth, make_ssin(birth, seq)
            birth = date.fromordinal(birth.toordinal() - 1)  # date full: shift a day


def draw_roster(n: int, teams: list[Team], seed: int, today: date) -> list[Person]:
    """Draw ``n`` inhabitants: age, sex, address (sector, street), team, SSIN and language."""
    data = region_data()
    rng = random.Random(f"{seed}:roster")
    pyramid, origins, ssins = _Pyramid(data), _Origins(data), _SsinAllocator(data)
    sectors, team_of, cum_sectors = sector_weights(teams)
    gp_spec = data["general_practitioner"]["registered_by_age_band"]
    today_ord = today.toordinal()
    people: list[Person] = []
    for i in range(n):
        age, sex = pyramid.draw(rng)
        birth = date.fromordinal(today_ord - int((age + rng.random()) * 365.2425) - 1)
        birth, ssin = ssins.allocate(birth, sex)
        k = bisect_left(cum_sectors, rng.random())
        sector = sectors[k]
        street = sector.streets[int(rng.random() * len(sector.streets))]
        house = str(1 + int(rng.random() ** 1.6 * 180))
        if sector.postal_code == "3000" and rng.random() < 0.35:
            house += f" bus {1 + int(rng.random() * 12)}"
        origin, language = origins.draw(rng, age)
        has_gp = rng.random() < gp_spec["values"][band_index(gp_spec["age_band_edges"], age)]
        people.append(
            Person(
                index=i,
                id=patient_id(i),
                sex=sex,
                birth=birth,
                age=age_on(birth, today),
                sector=sector,
                team=team_of[k],
                street=street,
                house=house,
                origin=origin,
                language=language,
                ssin=ssin,
                has_gp=has_gp,
            )
        )
    return people


def draw_name(rng: random.Random, origin: str, sex: str, birth_year: int) -> tuple[str, str]:
    """A (family, given) name fitting origin, sex and, for Flemish people, birth cohort."""
    names = region_data()["names"]
    surnames = names["surnames"][origin]
    family = surnames[int(rng.random() ** 1.3 * len(surnames))]
    spec = names["given"][origin]
    pool = spec[sex]
    if "cohort_edges" in spec:
        pool = pool[bisect_right(spec["cohort_edges"], birth_year)]
    return family, pool[int(rng.random() * len(pool))]
