"""Building blocks of the models: plain single-member modules that run under
`torch.func.vmap` unchanged (no branch on tensor values, no in-place writes into inputs,
randomness from torch's generator: `blocks.Dropout`, `torch.rand`)."""
