"""What a study has found, read from the storage alone: text labels (labels.py), learning curves
(curves.py), which trial is best and how far to trust it (best.py), the summary and trials table
(summary.py), `report`'s plots (plots.py), what optuna-dashboard shows beyond Optuna's own pages
(dashboard.py), the server that shows it (server.py), and what an exported model file says about
itself (model_card.py)."""
