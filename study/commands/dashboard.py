"""`catdog-study dashboard`: optuna-dashboard on the study's storage and artifact store."""

from __future__ import annotations

from pathlib import Path

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

    from study.results import server
    from study.store.artifacts import open_artifact_store
    from study.store.existing import open_existing_storage
    from study.store.storage import redacted_url

    # An existing study database only: the dashboard creates no database, folder or lock file.
    # It can write to it (notes, deleting studies), hence `writes`.
    opened = open_existing_storage(storage, writes=True)
    store = None
    if Path(artifact_dir).exists():  # shown as it is; a file there is an error
        store = open_artifact_store(artifact_dir, create=False)
    app = optuna_dashboard.wsgi(opened, artifact_store=store)

    def listening(url: str) -> None:  # once the socket is bound: nothing before can fail now
        if store is None:
            click.echo(
                f"warning: no artifact folder {artifact_dir}: the dashboard shows no "
                "checkpoints (give --artifact-dir the folder optimize wrote them to)",
                err=True,
            )
        if host not in LOCAL_HOSTS:
            click.echo(
                f"warning: listening on {host}: optuna-dashboard has no login, and anyone who "
                "can reach this port can change or delete studies. Prefer an SSH tunnel "
                "(see README).",
                err=True,
            )
        click.echo(f"optuna-dashboard for {redacted_url(storage)} on {url}/  (Ctrl-C stops it)")

    server.serve(app, host=host, port=port, on_listening=listening)
