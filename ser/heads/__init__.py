"""What a run predicts: its heads (`ser.heads.base.Head`), the built-in ones registered,
and their metrics."""

from ser.heads.multilabel import MultiLabelHead
from ser.heads.registry import register
from ser.heads.sentiment import SentimentHead

register(SentimentHead)
register(MultiLabelHead)
