"""Building blocks of the models: plain single-member PyTorch modules.

Every block runs under `torch.func.vmap` unchanged (`ser.train.ensemble` trains many
members at once that way): no branch on tensor values, no in-place writes into inputs,
randomness from `nn.Dropout` / `torch.rand`.

- `attention.py`: multi-head attention on `scaled_dot_product_attention` and post-norm
  transformer encoder / decoder layers.
- `gru.py`: the bidirectional GRU of the dialog models.
- `layers.py`: mask helpers, attention pooling, frame scaling, the 2-layer MLP head.
"""
