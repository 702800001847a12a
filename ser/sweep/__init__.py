"""`ser sweep`: the papers' tables as presets, cells content-addressed, dask when needed.

- `ser.sweep.presets`: the tables' cells and the papers' published numbers;
- `ser.sweep.spec`: a preset or TOML file (plus ``--set/--fix/--grid``) as cells;
- `ser.sweep.cells`: cells checked against the store, keyed, grouped into tasks;
- `ser.sweep.runner`: tasks in-process or on dask, per-cell locks, the manifest;
- `ser.sweep.report`: the tables as the papers print them, paired tests, figures.
"""
