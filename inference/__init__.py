"""The one inference path (onnxruntime, never torch): used by the bots, the CLI, evaluation
and the console."""
