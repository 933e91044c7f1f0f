"""What a study searches: dimensions and spaces (dimensions.py), the built-in spaces (builtin.py),
TOML space files (file.py), and the space `--space` names (resolve.py)."""
