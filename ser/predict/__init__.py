"""`ser predict`: a trained run's checkpoints applied to new recordings, their features
re-created from the recorded provenance (`run.py`, `features.py`)."""
