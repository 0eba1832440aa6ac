"""The model file floor: reading a saved file (header, metadata, tensors) and checking its metadata, with no
model. Below the core, which builds, loads and saves models."""
