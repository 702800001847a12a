"""Evaluation protocols: which utterances a model trains, selects and is tested on. Each
is a `Protocol` (`folds.py`) a corpus kind offers (`ser.corpus.registry`): IEMOCAP's
sessions (`sessions.py`), every corpus's speakers and groups (`groups.py`), a random
split (`random_split.py`)."""
