"""What a model's YAML file can get wrong, as raised while it loads."""

import dagster as dg


class DeclarationError(ValueError):
    """A problem with one attribute of a model's YAML file (its path under `attributes`)."""

    def __init__(self, attribute: tuple[str | int, ...], message: str):
        self.attribute = attribute
        super().__init__(message)


class InvalidModelFile(dg.DagsterInvalidDefinitionError):
    """A model's YAML file cannot work; the message names the file, line and attribute."""
