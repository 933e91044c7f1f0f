"""The report's cats-vs-dogs CNN: model, data, training. Knows nothing about Optuna."""
