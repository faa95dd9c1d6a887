"""Time-split evaluation, the training pipeline and the MLflow registry."""
