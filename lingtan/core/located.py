"""An error about one field of a document, at its path, so the site file can name the line and the
API the field (``("offsets", 2, "serial_from")``)."""

from __future__ import annotations


class LocatedError(ValueError):
    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
