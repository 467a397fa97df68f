"""The ``mmdiff`` command line: one grid of verbs x families, built from the family registry."""
