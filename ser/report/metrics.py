"""The classification metrics, which live with the heads that score with them
(`ser.heads.metrics`), under the name reports and records have always read them by."""

from ser.heads.metrics import (
    Metrics,
    compute_metrics,
    confusion,
    f1_scores,
    f1_seen,
    mean_std,
    mean_std_text,
    over_seeds,
    overall_metrics,
    summarize,
    ua_wa,
)

__all__ = [
    "Metrics", "compute_metrics", "confusion", "f1_scores", "f1_seen", "mean_std",
    "mean_std_text", "over_seeds", "overall_metrics", "summarize", "ua_wa",
]  # fmt: skip
