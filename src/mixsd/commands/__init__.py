"""One module per CLI verb: a docstring with an example, ``add_arguments``, ``run`` (its one-line
summary is in :data:`mixsd.cli.COMMANDS`)."""
