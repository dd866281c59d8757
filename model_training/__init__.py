"""Offline training: data, backbone, fine-tuning, calibration, OOD, ONNX export and evaluation
(needs the [train] extra)."""
