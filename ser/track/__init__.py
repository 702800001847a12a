"""Where a run is watched while it trains: MLflow or TensorBoard, logged by the trainer
and by `ser sweep` (`tracking`), and the hooks their front ends show its progress by
(`progress`), below both; `ser report` reads finished records and knows nothing of it."""
