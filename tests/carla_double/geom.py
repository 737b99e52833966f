"""Value types of CARLA's geometry (``carla.Location``, ``Rotation``, ``Transform`` ...), as LibCarla defines them.

CARLA's frame is left-handed: x forward, y right, z up, metres; angles are degrees and a positive yaw turns x
towards y. ``Rotation`` takes (pitch, yaw, roll) positionally. The rotation matrix is LibCarla's
``Rotation::RotateVector``: its columns are the forward, right and up vectors. Components are Python floats
(CARLA stores float32; the double keeps float64).
"""

from __future__ import annotations

import math

from .errors import argument_error


def _f(value, where: str) -> float:
    """Boost.Python's float conversion: numbers (and numpy scalars) pass, anything else is an ArgumentError."""
    if type(value) is float:
        return value
    if isinstance(value, str | bytes) or not (hasattr(type(value), "__float__") or hasattr(type(value), "__index__")):
        raise argument_error(where, value)
    return float(value)


class Vector3D:
    __slots__ = ("x", "y", "z")
    _repr_name = "Vector3D"

    def __init__(self, x=0.0, y=0.0, z=0.0):
        if isinstance(x, Vector3D):  # the (rhs) overload
            x, y, z = x.x, x.y, x.z
        where = f"{type(self).__name__}.__init__"
        self.x, self.y, self.z = _f(x, where), _f(y, where), _f(z, where)

    def __repr__(self):
        return f"{self._repr_name}(x={self.x:.6f}, y={self.y:.6f}, z={self.z:.6f})"

    __str__ = __repr__

    def __eq__(self, other):
        if not isinstance(other, Vector3D):
            return NotImplemented
        return self.x == other.x and self.y == other.y and self.z == other.z

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = object.__hash__

    def __add__(self, other):
        if not isinstance(other, Vector3D):
            return NotImplemented
        return Vector3D(self.x + other.x, self.y + other.y, self.z + other.z)

    def __sub__(self, other):
        if not isinstance(other, Vector3D):
            return NotImplemented
        return Vector3D(self.x - other.x, self.y - other.y, self.z - other.z)

    def __mul__(self, k):
        if isinstance(k, Vector3D):
            return NotImplemented
        k = _f(k, "Vector3D.__mul__")
        return Vector3D(self.x * k, self.y * k, self.z * k)

    __rmul__ = __mul__

    def __truediv__(self, k):
        k = _f(k, "Vector3D.__truediv__")
        return Vector3D(self.x / k, self.y / k, self.z / k)

    def __abs__(self):
        return Vector3D(abs(self.x), abs(self.y), abs(self.z))

    def length(self) -> float:
        return math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)

    def squared_length(self) -> float:
        return self.x * self.x + self.y * self.y + self.z * self.z

    def make_unit_vector(self) -> Vector3D:
        n = self.length()
        if n < 2.0 * 1.1920929e-07:
            raise RuntimeError("invalid vector: length is too small")
        return Vector3D(self.x / n, self.y / n, self.z / n)

    def distance(self, vector) -> float:
        return math.sqrt((self.x - vector.x) ** 2 + (self.y - vector.y) ** 2 + (self.z - vector.z) ** 2)

    def distance_squared(self, vector) -> float:
        return (self.x - vector.x) ** 2 + (self.y - vector.y) ** 2 + (self.z - vector.z) ** 2

    def distance_2d(self, vector) -> float:
        return math.hypot(self.x - vector.x, self.y - vector.y)

    def distance_squared_2d(self, vector) -> float:
        return (self.x - vector.x) ** 2 + (self.y - vector.y) ** 2

    def dot(self, vector) -> float:
        return self.x * vector.x + self.y * vector.y + self.z * vector.z

    def dot_2d(self, vector) -> float:
        return self.x * vector.x + self.y * vector.y

    def cross(self, vector) -> Vector3D:
        return Vector3D(
            self.y * vector.z - self.z * vector.y,
            self.z * vector.x - self.x * vector.z,
            self.x * vector.y - self.y * vector.x,
        )

    def get_vector_angle(self, vector) -> float:
        cos = self.dot(vector) / (self.length() * vector.length())
        return math.acos(max(-1.0, min(1.0, cos)))


class Location(Vector3D):
    __slots__ = ()
    _repr_name = "Location"

    def distance(self, location) -> float:  # the real argument name differs from Vector3D.distance
        return Vector3D.distance(self, location)


class Vector2D:
    __slots__ = ("x", "y")

    def __init__(self, x=0.0, y=0.0):
        self.x, self.y = _f(x, "Vector2D.__init__"), _f(y, "Vector2D.__init__")

    def __repr__(self):
        return f"Vector2D(x={self.x:.6f}, y={self.y:.6f})"

    __str__ = __repr__
    __hash__ = object.__hash__

    def __eq__(self, other):
        return isinstance(other, Vector2D) and self.x == other.x and self.y == other.y

    def __ne__(self, other):
        return not self.__eq__(other)

    def __add__(self, other):
        return Vector2D(self.x + other.x, self.y + other.y)

    def __sub__(self, other):
        return Vector2D(self.x - other.x, self.y - other.y)

    def __mul__(self, k):
        return Vector2D(self.x * k, self.y * k)

    __rmul__ = __mul__

    def __truediv__(self, k):
        return Vector2D(self.x / k, self.y / k)

    def length(self) -> float:
        return math.hypot(self.x, self.y)

    def squared_length(self) -> float:
        return self.x * self.x + self.y * self.y

    def make_unit_vector(self) -> Vector2D:
        n = self.length()
        if n < 2.0 * 1.1920929e-07:
            raise RuntimeError("invalid vector: length is too small")
        return Vector2D(self.x / n, self.y / n)


def rotation_columns(pitch: float, yaw: float, roll: float):
    """(forward, right, up) unit vectors as tuples, exactly LibCarla's Rotation::Get*Vector."""
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cr, sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    forward = (cy * cp, sy * cp, sp)
    right = (cy * sp * sr - sy * cr, sy * sp * sr + cy * cr, -cp * sr)
    up = (-cy * sp * cr - sy * sr, -sy * sp * cr + cy * sr, cp * cr)
    return forward, right, up


class Rotation:
    __slots__ = ("pitch", "yaw", "roll")

    def __init__(self, pitch=0.0, yaw=0.0, roll=0.0):
        w = "Rotation.__init__"
        self.pitch, self.yaw, self.roll = _f(pitch, w), _f(yaw, w), _f(roll, w)

    def __repr__(self):
        return f"Rotation(pitch={self.pitch:.6f}, yaw={self.yaw:.6f}, roll={self.roll:.6f})"

    __str__ = __repr__
    __hash__ = object.__hash__

    def __eq__(self, other):
        if not isinstance(other, Rotation):
            return NotImplemented
        return self.pitch == other.pitch and self.yaw == other.yaw and self.roll == other.roll

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def get_forward_vector(self) -> Vector3D:
        return Vector3D(*rotation_columns(self.pitch, self.yaw, self.roll)[0])

    def get_right_vector(self) -> Vector3D:
        return Vector3D(*rotation_columns(self.pitch, self.yaw, self.roll)[1])

    def get_up_vector(self) -> Vector3D:
        return Vector3D(*rotation_columns(self.pitch, self.yaw, self.roll)[2])


class Transform:
    __slots__ = ("location", "rotation")

    def __init__(self, location=None, rotation=None):
        if location is not None and not isinstance(location, Location):
            raise argument_error("Transform.__init__", location)
        if rotation is not None and not isinstance(rotation, Rotation):
            raise argument_error("Transform.__init__", rotation)
        self.location = Location(location) if location is not None else Location()
        self.rotation = Rotation(rotation.pitch, rotation.yaw, rotation.roll) if rotation is not None else Rotation()

    def __repr__(self):
        return f"Transform({self.location}, {self.rotation})"

    __str__ = __repr__
    __hash__ = object.__hash__

    def __eq__(self, other):
        if not isinstance(other, Transform):
            return NotImplemented
        return self.location == other.location and self.rotation == other.rotation

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def _cols(self):
        r = self.rotation
        return rotation_columns(r.pitch, r.yaw, r.roll)

    def get_forward_vector(self) -> Vector3D:
        return Vector3D(*self._cols()[0])

    def get_right_vector(self) -> Vector3D:
        return Vector3D(*self._cols()[1])

    def get_up_vector(self) -> Vector3D:
        return Vector3D(*self._cols()[2])

    def _apply(self, p, translate: bool):
        f, r, u = self._cols()
        x = p.x * f[0] + p.y * r[0] + p.z * u[0]
        y = p.x * f[1] + p.y * r[1] + p.z * u[1]
        z = p.x * f[2] + p.y * r[2] + p.z * u[2]
        if translate:
            x, y, z = x + self.location.x, y + self.location.y, z + self.location.z
        return x, y, z

    def transform(self, in_point):
        """Transforms ``in_point`` IN PLACE (as LibCarla does) and returns it as a Vector3D; a list is
        transformed element by element in place and None is returned."""
        if isinstance(in_point, list):
            for p in in_point:
                self.transform(p)
            return None
        if not isinstance(in_point, Vector3D):
            raise argument_error("Transform.transform", in_point)
        in_point.x, in_point.y, in_point.z = self._apply(in_point, True)
        return Vector3D(in_point.x, in_point.y, in_point.z)

    def transform_vector(self, in_point) -> Vector3D:
        """Rotates ``in_point`` in place (as LibCarla does) and returns it as a Vector3D."""
        in_point.x, in_point.y, in_point.z = self._apply(in_point, False)
        return Vector3D(in_point.x, in_point.y, in_point.z)

    def inverse_transform(self, in_point) -> Vector3D:
        f, r, u = self._cols()
        d = (in_point.x - self.location.x, in_point.y - self.location.y, in_point.z - self.location.z)
        out = (sum(a * b for a, b in zip(f, d)), sum(a * b for a, b in zip(r, d)), sum(a * b for a, b in zip(u, d)))
        in_point.x, in_point.y, in_point.z = out
        return Vector3D(*out)

    def get_matrix(self) -> list:
        f, r, u = self._cols()
        loc = (self.location.x, self.location.y, self.location.z)
        return [[f[i], r[i], u[i], loc[i]] for i in range(3)] + [[0.0, 0.0, 0.0, 1.0]]

    def get_inverse_matrix(self) -> list:
        f, r, u = self._cols()
        loc = (self.location.x, self.location.y, self.location.z)
        rows = [f, r, u]
        return [[rows[i][0], rows[i][1], rows[i][2], -sum(rows[i][k] * loc[k] for k in range(3))] for i in range(3)] + [
            [0.0, 0.0, 0.0, 1.0]
        ]


class BoundingBox:
    __slots__ = ("location", "extent", "rotation", "actor_id")

    def __init__(self, location=None, extent=None, rotation=None):
        self.location = Location(location) if location is not None else Location()
        self.extent = Vector3D(extent) if extent is not None else Vector3D()
        r = rotation if rotation is not None else Rotation()
        self.rotation = Rotation(r.pitch, r.yaw, r.roll)
        self.actor_id = 0

    def __repr__(self):
        e = self.extent
        return f"BoundingBox({self.location}, Extent(x={e.x:.6f}, y={e.y:.6f}, z={e.z:.6f}), {self.rotation})"

    __str__ = __repr__
    __hash__ = object.__hash__

    def __eq__(self, other):
        return (
            isinstance(other, BoundingBox)
            and self.location == other.location
            and self.extent == other.extent
            and self.rotation == other.rotation
        )

    def __ne__(self, other):
        return not self.__eq__(other)

    def get_local_vertices(self) -> list:
        local = Transform(self.location, self.rotation)
        out = []
        for sx in (-1, 1):
            for sy in (-1, 1):
                for sz in (-1, 1):
                    p = Location(sx * self.extent.x, sy * self.extent.y, sz * self.extent.z)
                    local.transform(p)
                    out.append(p)
        return out

    def get_world_vertices(self, bbox_transform) -> list:
        out = self.get_local_vertices()
        for p in out:
            bbox_transform.transform(p)
        return out

    def contains(self, world_point, point) -> bool:
        """Whether ``world_point`` lies in the box placed by the transform ``point`` (the real keyword name)."""
        p = Location(world_point)
        point.inverse_transform(p)
        Transform(self.location, self.rotation).inverse_transform(p)
        e = self.extent
        return -e.x <= p.x <= e.x and -e.y <= p.y <= e.y and -e.z <= p.z <= e.z


class GeoLocation:
    __slots__ = ("latitude", "longitude", "altitude")

    def __init__(self, latitude=0.0, longitude=0.0, altitude=0.0):
        self.latitude, self.longitude, self.altitude = float(latitude), float(longitude), float(altitude)

    def __repr__(self):
        return (
            f"GeoLocation(latitude={self.latitude:.6f}, longitude={self.longitude:.6f}, altitude={self.altitude:.6f})"
        )

    __str__ = __repr__


class Color:
    __slots__ = ("r", "g", "b", "a")

    def __init__(self, r=0, g=0, b=0, a=255):
        self.r, self.g, self.b, self.a = int(r), int(g), int(b), int(a)

    def __repr__(self):
        return f"Color({self.r},{self.g},{self.b},{self.a})"

    __str__ = __repr__
    __hash__ = object.__hash__

    def __eq__(self, other):
        return isinstance(other, Color) and (self.r, self.g, self.b, self.a) == (other.r, other.g, other.b, other.a)

    def __ne__(self, other):
        return not self.__eq__(other)
