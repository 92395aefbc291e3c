"""Placeholder: commands of this group are being built; register() adds nothing yet."""
import typer


def register(app: typer.Typer) -> None:
    return None
