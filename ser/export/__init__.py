"""`ser export`: a run's checkpoints as a folder that stands alone (weights in
safetensors, config.json, a model card, the encoders' files, ONNX), and that folder read
back for `ser predict --model`. The layout: docs/export.md, docs/dev/predict.md.
"""
