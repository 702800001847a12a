"""Building blocks of stacked models: K independent models ("members") in one.

Every parameter has a leading member dimension K, every activation too: a layer is one
batched product over the members instead of K small ones. Members never mix: member k's
outputs depend on member k's weights and member k's inputs only, so K models trained
stacked are K models trained one after another (`ser.train.loop`), at the cost of one.

- `stacked.py`: `Linear`, `LayerNorm`, `Parameter` init per member (`init_members`).
- `noise.py`: per-member random streams; dropout whose masks do not depend on the other
  members or on padding.
- `attention.py`: multi-head attention and post-norm transformer layers.
- `gru.py`: a bidirectional GRU that steps over real positions only.
- `conv.py`: 2-d convolution, members folded into channel groups.
- `layers.py`: mask helpers, attention pooling, frame scaling, the 2-layer MLP head.
"""
