"""The runtime floor below the wings: machine probes, timing, devices, process groups, progress, preprocessing,
data loaders, compiled inference, opening a model. Training, inference and the benchmark share it and never
import each other."""
