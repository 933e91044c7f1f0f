"""One module per `catdog-study` command (or command group)."""
