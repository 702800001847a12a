"""Run records, the layer below training and reports: a run's `run.json` (`record`:
`RunRecord` and its typed parts; `fold_entry`: one (seed, fold)), read in one place
whatever version wrote it and written in one place, and its `predictions.csv`
(`predictions`)."""
