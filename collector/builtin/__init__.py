"""The built-in simulator: procedural roads, traffic, an expert ego driver and a numpy renderer."""
