"""One module per CLI verb: ``HELP``, docstring with an example, ``add_arguments``, ``run``."""
