"""The inference wing: predicting on images, exporting (ONNX, .pt2) and quantizing to int8."""
