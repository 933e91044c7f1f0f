"""`catdog-study dashboard`: optuna-dashboard on the study's storage and artifact store."""

from __future__ import annotations

import click

from study.commands.options import storage_options
from study.settings import DASHBOARD_HOST, DASHBOARD_PORT

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option(
    "--host",
    default=DASHBOARD_HOST,
    show_default=True,
    help="Address to listen on. Anything but loopback exposes the study to the network.",
)
@click.option("--port", default=DASHBOARD_PORT, show_default=True, type=click.IntRange(1, 65535))
@storage_options
def dashboard(host: str, port: int, storage: str, study_name: str, artifact_dir: str) -> None:
    """Serve optuna-dashboard: trials, curves, notes and checkpoints, in a browser."""
    import optuna_dashboard  # only when the command runs: it is slow to import

    from study.store.artifacts import open_artifact_store
    from study.store.storage import open_storage

    if host not in LOCAL_HOSTS:
        click.echo(
            f"warning: listening on {host}: optuna-dashboard has no login, and anyone who can "
            "reach this port can change or delete studies. Prefer an SSH tunnel "
            "(see README).",
            err=True,
        )
    opened = open_storage(storage)
    store = open_artifact_store(artifact_dir)
    click.echo(f"optuna-dashboard for {storage} on http://{host}:{port}/  (Ctrl-C stops it)")
    optuna_dashboard.run_server(opened, host=host, port=port, artifact_store=store)
