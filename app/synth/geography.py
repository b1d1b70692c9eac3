"""Where people live: postal codes, synthetic sectors and streets, neighbourhood teams.

Leuven's five postal codes (3000 Leuven, 3001 Heverlee, 3010 Kessel-Lo, 3012 Wilsele, 3018
Wijgmaal) keep their population weights; each is split into synthetic sectors with generic
street names, and sectors are assigned to neighbourhood teams. **The sector-to-team mapping is
synthetic**: Zorgzaam Leuven publishes no such mapping. With the default 8 teams the mapping of
``leuven.json`` applies (teams of 6,000-17,500 people at full size); any other number of teams
cuts the sectors, in postal-code order, into contiguous groups of similar population.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.synth.params import Json, cumulative, region_data


@dataclass(frozen=True, slots=True)
class Sector:
    """A synthetic statistical sector of one sub-municipality."""

    code: str
    postal_code: str
    city: str
    name: str
    inhabitants: int
    streets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Team:
    """A neighbourhood (vicinity) team and the sectors it serves."""

    index: int
    key: str
    name: str
    sectors: tuple[Sector, ...]

    @property
    def org_id(self) -> str:
        """Id of the team's Organization (also of its CareTeam and Group)."""
        return f"team-{self.key}"


def load_sectors(data: Json | None = None) -> list[Sector]:
    """All sectors in postal-code order."""
    data = data or region_data()
    cities = {p["code"]: p["city"] for p in data["postal_codes"]}
    return [
        Sector(
            code=s["code"],
            postal_code=s["postal_code"],
            city=cities[s["postal_code"]],
            name=s["name"],
            inhabitants=s["inhabitants"],
            streets=tuple(s["streets"]),
        )
        for s in data["sectors"]["items"]
    ]


def build_teams(n_teams: int, data: Json | None = None) -> list[Team]:
    """The ``n_teams`` neighbourhood teams (1 up to the number of sectors)."""
    data = data or region_data()
    sectors = load_sectors(data)
    if not 1 <= n_teams <= len(sectors):
        raise ValueError(f"teams must be between 1 and {len(sectors)}, not {n_teams}")
    by_code = {s.code: s for s in sectors}
    spec = data["teams"]
    if n_teams == spec["default_count"]:
        return [
            Team(i, t["key"], t["name"], tuple(by_code[c] for c in t["sectors"]))
            for i, t in enumerate(spec["items"])
        ]
    return _partition(sectors, n_teams)


def _partition(sectors: list[Sector], n_teams: int) -> list[Team]:
    """Contiguous groups of sectors with about equal population, one per team."""
    total = sum(s.inhabitants for s in sectors)
    groups: list[list[Sector]] = [[] for _ in range(n_teams)]
    acc = 0
    k_prev = 0
    for i, s in enumerate(sectors):
        # place the sector by its population midpoint, skipping no team and leaving at least
        # one sector for every team still to come
        k = min(int((acc + s.inhabitants / 2) * n_teams / total), k_prev + 1, n_teams - 1)
        k = max(k, n_teams - (len(sectors) - i), k_prev if i else 0)
        groups[k].append(s)
        k_prev = k
        acc += s.inhabitants
    teams = []
    for i, g in enumerate(groups):
        name = g[0].name if len(g) == 1 else f"{g[0].name} - {g[-1].name}"
        teams.append(Team(i, f"zl{i + 1}", name, tuple(g)))
    return teams


def sector_weights(teams: list[Team]) -> tuple[list[Sector], list[int], list[float]]:
    """Sectors, the team index of each, and their cumulative population weights."""
    sectors = [s for t in teams for s in t.sectors]
    team_of = [t.index for t in teams for _ in t.sectors]
    return sectors, team_of, cumulative([s.inhabitants for s in sectors])
