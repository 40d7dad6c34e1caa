"""The application layer: one module per command, and the run directory's life (``directory.py``)."""
