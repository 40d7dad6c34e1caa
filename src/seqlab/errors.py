"""The one exception type for bad input: the CLI prints its message on one line and exits non-zero."""


class SeqlabError(ValueError):
    """Bad input from the user (a file, an option, a checkpoint): the message says what and where."""
