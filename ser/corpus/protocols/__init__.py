"""Evaluation protocols: which utterances a model trains, selects and is tested on. Each
is a `Protocol` (`folds.py`) a corpus kind offers (`ser.corpus.kind`): every corpus's
speakers and groups (`groups.py`), a random split (`random_split.py`), EmoBox's folds
(`emobox.py`); a kind's own protocols may live beside it in `ser/corpus/kinds/`
(IEMOCAP's sessions: `iemocap_sessions.py`)."""
