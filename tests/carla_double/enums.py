"""CARLA's enumerations with their real member names and values, behaving like Boost.Python enums.

A Boost.Python enum member is an ``int`` subclass: ``str()`` is its name, ``repr()`` is
``carla.libcarla.<Enum>.<Name>``, ``|`` and ``&`` give plain ints, the class has ``names`` and ``values``
dicts, and calling the class with an int returns the named member (or an unnamed value of the enum type).
"""

from __future__ import annotations


class BoostEnum(int):
    """Base of the enum classes below. Subclasses declare ``_members = {name: value}``."""

    _members: dict[str, int] = {}
    names: dict = {}
    values: dict = {}

    def __new__(cls, value=0):
        value = int(value)
        existing = cls.values.get(value)
        if existing is not None:
            return existing
        return int.__new__(cls, value)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.names, cls.values = {}, {}
        for name, value in cls._members.items():
            member = int.__new__(cls, value)
            cls.names[name] = member
            cls.values[value] = member  # aliases: the last one registered names the value, as in Boost
            setattr(cls, name, member)

    @property
    def name(self):
        for name, member in type(self).names.items():
            if member is self:
                return name
        return None

    def __repr__(self):
        name = self.name
        base = f"carla.libcarla.{type(self).__name__}"
        return f"{base}.{name}" if name is not None else f"{base}({int(self)})"

    def __str__(self):
        name = self.name
        return name if name is not None else repr(self)

    def __hash__(self):
        return int.__hash__(self)

    def __eq__(self, other):
        return int.__eq__(self, other)

    def __reduce__(self):
        return (type(self), (int(self),))


class LaneType(BoostEnum):
    _members = {
        "NONE": 1,
        "Driving": 2,
        "Stop": 4,
        "Shoulder": 8,
        "Biking": 16,
        "Sidewalk": 32,
        "Border": 64,
        "Restricted": 128,
        "Parking": 256,
        "Bidirectional": 512,
        "Median": 1024,
        "Special1": 2048,
        "Special2": 4096,
        "Special3": 8192,
        "RoadWorks": 16384,
        "Tram": 32768,
        "Rail": 65536,
        "Entry": 131072,
        "Exit": 262144,
        "OffRamp": 524288,
        "OnRamp": 1048576,
        "Any": -2,
    }


class LaneMarkingType(BoostEnum):
    _members = {
        "NONE": 10,
        "Other": 0,
        "Broken": 1,
        "Solid": 2,
        "SolidSolid": 3,
        "SolidBroken": 4,
        "BrokenSolid": 5,
        "BrokenBroken": 6,
        "BottsDots": 7,
        "Grass": 8,
        "Curb": 9,
    }


class LaneMarkingColor(BoostEnum):
    _members = {"Standard": 0, "Blue": 1, "Green": 2, "Red": 3, "White": 0, "Yellow": 4, "Other": 5}


class LaneChange(BoostEnum):
    _members = {"NONE": 0, "Right": 1, "Left": 2, "Both": 3}


class VehicleLightState(BoostEnum):
    _members = {
        "NONE": 0,
        "Position": 1,
        "LowBeam": 2,
        "HighBeam": 4,
        "Brake": 8,
        "RightBlinker": 16,
        "LeftBlinker": 32,
        "Reverse": 64,
        "Fog": 128,
        "Interior": 256,
        "Special1": 512,
        "Special2": 1024,
        "All": 0xFFFFFFFF,
    }


class AttachmentType(BoostEnum):
    _members = {"Rigid": 0, "SpringArm": 1, "SpringArmGhost": 2}


class TrafficLightState(BoostEnum):
    _members = {"Red": 0, "Yellow": 1, "Green": 2, "Off": 3, "Unknown": 4}


class ActorAttributeType(BoostEnum):
    _members = {"Bool": 1, "Int": 2, "Float": 3, "String": 4, "RGBColor": 5}


class MapLayer(BoostEnum):
    _members = {
        "NONE": 0,
        "Buildings": 1,
        "Decals": 2,
        "Foliage": 4,
        "Ground": 8,
        "ParkedVehicles": 16,
        "Particles": 32,
        "Props": 64,
        "StreetLights": 128,
        "Walls": 256,
        "All": 65535,
    }


class ColorConverter(BoostEnum):
    _members = {"Raw": 0, "Depth": 1, "LogarithmicDepth": 2, "CityScapesPalette": 3}


class ActorState(BoostEnum):
    _members = {"Invalid": 0, "Active": 1, "Dormant": 2}
