"""The care providers of each neighbourhood team and who cares for whom.

Per team: GPs (about 1 per 1,500 inhabitants), community pharmacies (1 per 2,500) with one or two
pharmacists, home nurses, physiotherapists, dietitians, social workers and diabetes educators, at
least one of each; the region shares two hospitals and two laboratories. Ratios are data in
``leuven.json``. Every inhabitant gets a GP and a pharmacy of their own team.

Shared resource ids encode their identifier so that a reference can be turned into a conditional
reference without a lookup (see ``bundles.py``): ``nihdi-<number>`` for Practitioners,
PractitionerRoles and NIHDI-numbered Organizations, ``team-<key>`` for a team's Organization,
CareTeam and Group.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from dataclasses import dataclass, field

from app.synth.demography import Person, draw_name
from app.synth.geography import Sector, Team
from app.synth.identifiers import make_cbe, make_nihdi
from app.synth.params import cumulative, region_data

ZONE_KEY = "zone"


@dataclass(slots=True)
class Professional:
    """A care professional in one role; Practitioner and PractitionerRole share the id."""

    role: str
    nihdi: str
    family: str
    given: str
    gender: str
    team: int
    organization_id: str

    @property
    def id(self) -> str:
        return f"nihdi-{self.nihdi}"

    @property
    def display(self) -> str:
        return f"{self.given} {self.family}"


@dataclass(slots=True)
class Pharmacy:
    """A community pharmacy (an Organization) and its pharmacists."""

    nihdi: str
    cbe: str
    name: str
    team: int
    sector: Sector
    street: str
    house: str
    pharmacists: list[Professional] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"nihdi-{self.nihdi}"


@dataclass(slots=True)
class Facility:
    """A hospital or laboratory shared by the region."""

    kind: str
    key: str
    nihdi: str
    cbe: str
    name: str

    @property
    def id(self) -> str:
        return f"nihdi-{self.nihdi}"


@dataclass(slots=True)
class TeamStaff:
    """The professionals and pharmacies working with one neighbourhood team."""

    team: Team
    inhabitants: int
    roles: dict[str, list[Professional]]
    pharmacies: list[Pharmacy]

    def members(self) -> list[Professional]:
        """Every professional of the team, pharmacists included, in a stable order."""
        out = [p for ps in self.roles.values() for p in ps]
        out.extend(ph for pharmacy in self.pharmacies for ph in pharmacy.pharmacists)
        return out


@dataclass(slots=True)
class Directory:
    """All providers of the region."""

    staff: list[TeamStaff]
    hospitals: list[Facility]
    laboratories: list[Facility]


class _Numbers:
    """Unique synthetic NIHDI and CBE numbers, scattered over the serial range."""

    def __init__(self) -> None:
        self.nihdi_count = 0
        self.cbe_count = 0

    def nihdi(self, profession_digit: str, suffix: str) -> str:
        self.nihdi_count += 1
        return make_nihdi(profession_digit, (self.nihdi_count * 7919) % 10000, suffix)

    def cbe(self) -> str:
        self.cbe_count += 1
        return make_cbe((self.cbe_count * 104729) % 1_000_000)


def _professional_origin(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return keys[bisect_left(cumulative(list(weights.values())), rng.random())]


def build_directory(teams: list[Team], inhabitants: list[int], seed: int) -> Directory:
    """Providers for each team, sized on the team's number of inhabitants in the roster."""
    data = region_data()
    spec = data["providers"]
    rng = random.Random(f"{seed}:providers")
    numbers = _Numbers()
    professionals = spec["professionals"]

    def person(role: dict[str, str], team: Team, org_id: str) -> Professional:
        gender = "female" if rng.random() < professionals["female_share"] else "male"
        origin = _professional_origin(rng, professionals["origin_weights"])
        family, given = draw_name(rng, origin, gender, 1975)
        nihdi = numbers.nihdi(role["nihdi_first_digit"], role["nihdi_suffix"])
        return Professional(role["key"], nihdi, family, given, gender, team.index, org_id)

    staff: list[TeamStaff] = []
    pharmacist_spec = next(r for r in spec["roles"] if r["key"] == "pharmacist")
    for team, n in zip(teams, inhabitants, strict=True):
        roles: dict[str, list[Professional]] = {}
        for role in spec["roles"]:
            if "per_inhabitants" in role:
                count = max(1, round(n / role["per_inhabitants"]))
                roles[role["key"]] = [person(role, team, team.org_id) for _ in range(count)]
        pharmacies = []
        for _ in range(max(1, round(n / spec["pharmacy_per_inhabitants"]))):
            sector = team.sectors[int(rng.random() * len(team.sectors))]
            street = sector.streets[int(rng.random() * len(sector.streets))]
            pharmacy = Pharmacy(
                numbers.nihdi("0", "000"),
                numbers.cbe(),
                f"Apotheek {street}",
                team.index,
                sector,
                street,
                str(1 + int(rng.random() * 120)),
            )
            low, high = pharmacist_spec["per_pharmacy"]
            for _ in range(low + int(rng.random() * (high - low + 1))):
                pharmacy.pharmacists.append(person(pharmacist_spec, team, pharmacy.id))
            pharmacies.append(pharmacy)
        staff.append(TeamStaff(team, n, roles, pharmacies))

    def facility(kind: str, item: dict[str, str]) -> Facility:
        return Facility(kind, item["key"], numbers.nihdi("0", "000"), numbers.cbe(), item["name"])

    return Directory(
        staff,
        [facility("hospital", h) for h in spec["hospitals"]],
        [facility("laboratory", lab) for lab in spec["laboratories"]],
    )


def assign_providers(people: list[Person], directory: Directory, seed: int) -> None:
    """Give everyone a GP and a pharmacy of their team (GP lists of about equal size)."""
    rng = random.Random(f"{seed}:assignment")
    for p in people:
        staff = directory.staff[p.team]
        gps = staff.roles["gp"]
        p.gp = gps[int(rng.random() * len(gps))]
        p.pharmacy = staff.pharmacies[int(rng.random() * len(staff.pharmacies))]
