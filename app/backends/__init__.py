"""Executors of the op vocabulary (app/ops.py): `ggml` (the engine) and, later, `webgpu`."""
