"""The error a command raises for a bad argument that argparse cannot check."""

from __future__ import annotations


class UsageError(Exception):
    """A bad argument: exit code 2 and the command's usage, like argparse's own."""


class NotFound(Exception):
    """What a well-formed command asked for is not there (an actor, a
    definition): exit code 1, as for a store that is not there."""
