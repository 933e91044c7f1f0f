"""`python -m study ...` is `catdog-study ...`, for machines where the project is not installed."""

from study.cli import main

main()
