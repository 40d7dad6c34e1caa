"""The one exception type for bad input: the CLI prints its message on one line and exits non-zero."""


class SeqlabError(ValueError):
    """Bad input from the user (a file, an option, a checkpoint): the message says what and where."""


class Unsupported(SeqlabError):
    """An operation this model (or this kind of data) cannot do, e.g. ``forecast`` of a text model."""


class InternalError(RuntimeError):
    """A bug in seqlab, not the user's input: the CLI says so and ``--debug`` shows the traceback."""


class OptionError(SeqlabError):
    """A user error about named settings. The message names them as the library does (``hidden_size``); an
    interface re-renders it with its own spelling (the CLI: ``--hidden``) through ``render``.

    ``template`` holds ``{0}``, ``{1}``, ... for each name and ``{all}`` for all of them, comma-separated."""

    def __init__(self, template: str, *names: str) -> None:
        self.template, self.names = template, names
        super().__init__(self.render(lambda name: name))

    def render(self, spell) -> str:
        spelled = [spell(n) for n in self.names]
        text = self.template.replace("{all}", ", ".join(spelled))
        for i, name in enumerate(spelled):  # str.replace, not format: the rest may hold braces of user data
            text = text.replace(f"{{{i}}}", name)
        return text


class Notice(UserWarning):
    """Something the user should know that is not an error (stereo mixed to mono): a warning the library raises
    and the CLI prints as one ``seqlab: ...`` line, so the layers below the interface never print."""
