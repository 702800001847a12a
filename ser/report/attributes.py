"""The attribute scores, which live with the attribute head (`ser.heads.attribute_metrics`),
under the name reports and records have always read them by."""

from ser.heads.attribute_metrics import (
    ATTRIBUTES,
    MEAN,
    SCORES,
    AttributeMetrics,
    AttributeScores,
    attribute_metrics,
    ccc,
    mae,
    overall_attribute_metrics,
    pearson,
    summarize_attributes,
)

__all__ = [
    "ATTRIBUTES", "MEAN", "SCORES", "AttributeMetrics", "AttributeScores", "attribute_metrics",
    "ccc", "mae", "overall_attribute_metrics", "pearson", "summarize_attributes",
]  # fmt: skip
