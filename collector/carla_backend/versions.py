"""What each supported CARLA version offers, and how every scenario maps onto it (data, no server calls).

CARLA 0.9.15 / 0.9.16 (Unreal Engine 4) ship many towns; 0.10.0 (Unreal Engine 5) ships essentially only
``Town10HD_Opt``, so there the scenarios differ by where the ego starts (spawn rules), the route, the traffic and
the weather rather than by the town.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import SimulatorError

SUPPORTED_VERSIONS = ((0, 9, 15), (0, 9, 16), (0, 10, 0))


@dataclass(frozen=True)
class ServerFamily:
    name: str
    engine: str
    executables: tuple[str, ...]  # launcher names under CARLA_ROOT (Windows .exe / Linux .sh added by the launcher)


UE4 = ServerFamily("ue4", "Unreal Engine 4", ("CarlaUE4",))
UE5 = ServerFamily("ue5", "Unreal Engine 5", ("CarlaUnreal",))


def family_of_executable(name: str) -> ServerFamily:
    """The family of a server launcher by its file name (CarlaUE4.exe -> UE4, CarlaUnreal.sh -> UE5)."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    for family in (UE4, UE5):
        if stem in family.executables:
            return family
    raise SimulatorError(f"{name} is not a CARLA server launcher; expected one of "
                         f"{', '.join(UE4.executables + UE5.executables)} (.exe on Windows, .sh on Linux)")


def family_of(version: tuple[int, int, int]) -> ServerFamily:
    """The family of a server version; SimulatorError for versions this backend does not support."""
    supported = ", ".join(".".join(map(str, v)) for v in SUPPORTED_VERSIONS)
    if version[:2] == (0, 9) and version[2] >= 15:
        return UE4
    if version[:2] == (0, 10):
        return UE5
    raise SimulatorError(f"CARLA server version {'.'.join(map(str, version))} is not supported; supported: "
                         f"{supported}. Install one of those (and the matching Python client).")


@dataclass(frozen=True)
class SpawnRule:
    """Which spawn points suit a scenario, judged from the map's lanes around each point."""

    min_lanes: int = 1  # driving lanes in the ego's direction at the spawn point
    max_lanes: int = 8
    junction_ahead_m: tuple[float, float] | None = None  # a junction must start within this range ahead
    clear_ahead_m: float = 0.0  # no junction within this distance ahead
    min_heading_change_deg: float = 0.0  # over the next CURVE_LOOKAHEAD_M: curvy roads

    def relaxed(self) -> SpawnRule:
        """The next looser rule (used when a map has no spawn point that fits)."""
        if self.min_heading_change_deg > 0:
            return SpawnRule(self.min_lanes, self.max_lanes, self.junction_ahead_m, self.clear_ahead_m, 0.0)
        if self.junction_ahead_m is not None:
            return SpawnRule(self.min_lanes, self.max_lanes, (5.0, 250.0), 0.0, 0.0)
        if self.clear_ahead_m > 0:
            return SpawnRule(self.min_lanes, self.max_lanes)
        return SpawnRule()


@dataclass(frozen=True)
class CarlaScenario:
    maps: tuple[str, ...]  # preferred towns, first available wins
    rule: SpawnRule
    route: tuple[str, ...] = ()  # Traffic Manager route choices at junctions ('Left', 'Straight', 'Right')
    traffic_radius_m: float = 250.0  # other vehicles are spawned at the spawn points nearest the ego


_HIGHWAY = SpawnRule(min_lanes=2, clear_ahead_m=150.0)
_UE4: dict[str, CarlaScenario] = {
    "highway_follow": CarlaScenario(("Town04", "Town06", "Town05"), _HIGHWAY),
    "lane_change": CarlaScenario(("Town04", "Town06", "Town05"), _HIGHWAY),
    "stop_and_go": CarlaScenario(("Town04", "Town05", "Town06"), SpawnRule(min_lanes=1, clear_ahead_m=150.0)),
    "urban_intersection": CarlaScenario(("Town03", "Town10HD_Opt", "Town10HD", "Town05"),
                                        SpawnRule(junction_ahead_m=(20.0, 80.0)), route=("Left", "Straight", "Right")),
    "suburban_four_way_stop": CarlaScenario(("Town07", "Town02", "Town01"),
                                            SpawnRule(max_lanes=1, junction_ahead_m=(20.0, 80.0)),
                                            route=("Left", "Straight", "Right")),
    "curvy_road": CarlaScenario(("Town07", "Town05", "Town03"),
                                SpawnRule(max_lanes=1, clear_ahead_m=60.0, min_heading_change_deg=25.0)),
}
_UE5: dict[str, CarlaScenario] = {
    name: CarlaScenario(("Town10HD_Opt",), s.rule, s.route, s.traffic_radius_m) for name, s in _UE4.items()
}
SCENARIO_MAPS = {"ue4": _UE4, "ue5": _UE5}


def map_basename(name: str) -> str:
    """'/Game/Carla/Maps/Town04' or 'Carla/Maps/Town04' -> 'Town04'."""
    return str(name).rstrip("/").rsplit("/", 1)[-1]


def carla_scenario(family: ServerFamily, scenario: str) -> CarlaScenario:
    try:
        return SCENARIO_MAPS[family.name][scenario]
    except KeyError:
        raise SimulatorError(f"scenario {scenario!r} has no CARLA mapping; mapped: "
                             f"{', '.join(SCENARIO_MAPS[family.name])}") from None


def choose_map(family: ServerFamily, scenario: str, available: list[str]) -> str:
    """The first preferred town of ``scenario`` the server offers (bare name); SimulatorError if none."""
    offered = {map_basename(m): m for m in available}
    wanted = carla_scenario(family, scenario).maps
    for name in wanted:
        if name in offered:
            return name
    raise SimulatorError(f"the CARLA server offers none of the towns scenario {scenario!r} uses "
                         f"({', '.join(wanted)}); it offers {', '.join(sorted(offered)) or 'nothing'}. Install the "
                         f"additional maps package of your CARLA version, or choose another --scenario")
