"""Package MLPerf runs into the official open-division tree and check it.

Modules: system (systems/*.json model and schema), detect/network (system detection), layout (tree
paths per round), inputs (run directories), measurements, package (assembly), rules (our checker),
checker (the official checker as a subprocess), cli.
"""
