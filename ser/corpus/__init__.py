"""Corpora: the utterance record every corpus kind reads into (`records.py`), the kinds
and what they offer (`registry.py`, a module each in `kinds/`), their label sets,
evaluation protocols (`protocols/`), audio loading and transcript WER."""
