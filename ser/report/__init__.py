"""Reports of finished runs: tables (`runs.py`) and plots (`plots.py`) of run records."""
