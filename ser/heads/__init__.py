"""The heads a run can train (`ser.heads.base.Head`), the built-in ones registered."""

from ser.heads.multilabel import MultiLabelHead
from ser.heads.registry import register
from ser.heads.sentiment import SentimentHead

register(SentimentHead)
register(MultiLabelHead)
