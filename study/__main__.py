"""`python -m study ...` is `catdog-study ...`, for machines where it is not installed."""

from study.cli import main

main()
