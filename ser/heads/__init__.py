"""What a run predicts: its heads, and their metrics."""
