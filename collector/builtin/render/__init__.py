"""The built-in simulator's camera renderer. Entry point: :class:`Renderer` (``renderer.py``), which turns a world and
an ego pose into the two model frames; the other modules are its parts (ground raster, ground search, vehicle
boxes, shading)."""

from .renderer import Renderer

__all__ = ["Renderer"]
