"""Persistence: images, posts, predictions, corrections, labels, model versions, retrain jobs."""
