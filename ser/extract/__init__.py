"""Feature extractors (stage 1): HuBERT-family SSL, MPNet, BERT, openSMILE IS13, log-mel.

One file per extractor, one `Kind` line each in `registry.py` (what `ser extract`,
`ser predict` and train's feature resolution read); the runner (`run.py`) extracts a
corpus into a store, resumably, in-process or on dask. Torch-free to import.
"""
