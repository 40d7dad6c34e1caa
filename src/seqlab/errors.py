"""The one exception type for bad input: the CLI prints its message on one line and exits non-zero."""


class SeqlabError(ValueError):
    """Bad input from the user (a file, an option, a checkpoint): the message says what and where."""


class Unsupported(SeqlabError):
    """An operation this model (or this kind of data) cannot do, e.g. ``forecast`` of a text model."""


class InternalError(RuntimeError):
    """A bug in seqlab, not the user's input: the CLI says so and ``--debug`` shows the traceback."""
