"""What a run predicts: its heads (`ser.heads.base.Head`), the built-in ones registered,
and their metrics."""

from ser.heads.emotion_intensities import EmotionIntensitiesHead
from ser.heads.multilabel import MultiLabelHead
from ser.heads.registry import register
from ser.heads.sentiment import SentimentHead
from ser.heads.sentiment_score import SentimentScoreHead

register(SentimentHead)
register(MultiLabelHead)
register(SentimentScoreHead)
register(EmotionIntensitiesHead)
