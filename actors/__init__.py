"""stateward.actors: actors, handles, supervisor and runtime (built on pykka)."""

import logging as _logging

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

__all__: list[str] = []
