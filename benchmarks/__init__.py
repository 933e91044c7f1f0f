"""Measurements kept with the repository but outside the package (see each folder's README)."""
