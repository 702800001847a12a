"""ser: multimodal speech emotion recognition on IEMOCAP, MELD, MSP-Podcast, CREMA-D,
RAVDESS or any corpus given as a manifest.

Stage 1 (``ser extract``) runs pretrained encoders once into a feature store; stage 2
(``ser train``) trains fusion models on the cached features in minutes.
"""

__version__ = "0.1.0"
