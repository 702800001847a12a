"""Corpus kinds: one module per layout, each read into `ser.corpus.records.Utterance`
records; `ser.corpus.registry` holds one line per kind."""
