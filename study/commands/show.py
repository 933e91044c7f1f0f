"""`catdog-study show`: what an exported model file says about itself, and whether it is intact."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the file's whole header and its checks as one JSON object.",
)
def show(model: Path, as_json: bool) -> None:
    """Describe MODEL: what it learned from, image size, classes, test scores, recipe, origin.

    Its SHA-256 is compared with MODEL.sha256 when that file exists (export writes it), and its
    weights with the digest written with them; a failed check ends in an error after the
    description.
    """
    import json  # torch (through catdog.modelfile): only when the command runs

    from catdog.modelfile import ModelFileError, checksum_path, load_model_file, read_model_info
    from study.results.model_card import card_json, card_lines, checksum

    info = read_model_info(model)
    file = checksum(model)
    if as_json:
        click.echo(json.dumps(card_json(info, file), indent=2))
    else:
        click.echo("\n".join(card_lines(info, file)))
    if file.matches is False:
        raise ModelFileError(
            f"{model}: SHA-256 does not match the one in {checksum_path(model)}: the file was "
            "changed or damaged"
        )
    load_model_file(model)  # the weights against their digest and the network they describe
