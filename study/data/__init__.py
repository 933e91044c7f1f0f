"""Which images: the data source `--data` names (source.py), its splits read through the cache and
loaded onto the device (splits.py), and Kaggle's set fetched into place (download.py)."""
