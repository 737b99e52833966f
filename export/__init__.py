"""torch -> ONNX -> tinygrad pickle, and the metadata modeld reads."""
