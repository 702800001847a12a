"""Fine-tuning from the cache: an encoder's top layers trained on the hidden states a
feature store holds for the layer below them (`top_layers`: `load_top_layers`, `TopLayers`,
`lora`)."""
