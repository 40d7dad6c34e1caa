"""Command-line option machinery: argparse types whose errors say what was expected, the data options every
command that reads data takes (one per ``DataSpec`` field), and options generated from a config dataclass (each
setting one ``--setting-name``), so the CLI never maps a config by hand."""

from __future__ import annotations

import argparse
import dataclasses
import math

from seqlab.data.series import FEATURES, FILL_POLICIES
from seqlab.data.spec import AUDIO_ENCODINGS, AUDIO_FIELDS, RECORDED_FIELDS, TEXT_FIELDS, DataSpec
from seqlab.experiments.common import config_settings
from seqlab.training import SCORE_BLOCKS, SCORE_LIMIT


def number(convert, ok, expected: str):
    """An argparse type: ``convert`` the text, then insist on ``ok(value)``; errors say what was expected."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


def at_least(minimum: int):
    return number(int, lambda v: v >= minimum, "a positive integer" if minimum == 1 else f"an integer >= {minimum}")


positive_int, non_negative_int = at_least(1), at_least(0)
positive_float = number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
fraction = number(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def path_name(text: str) -> str:
    """An argparse type for a file or folder name: not empty (``--data ""`` would mean the default data)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a file name, got {text!r}")
    return text


def list_of(parse_one, expected: str | None):
    """An argparse type: comma-separated values, each through ``parse_one`` ("10,20" -> (10, 20)); a bad value
    is reported as ``expected`` (None: as ``parse_one`` says)."""

    def parse(text: str) -> tuple:
        try:
            return tuple(parse_one(v.strip()) for v in text.split(","))
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(
                e if expected is None else f"expected {expected} separated by commas, got {text!r}"
            ) from None

    return parse


def names(choices: tuple[str, ...], what: str):
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; choose from {', '.join(choices)}")
        return text

    return parse


class Extend(argparse.Action):
    """A list option given once with commas, or repeated: both add to one tuple."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, (*(getattr(namespace, self.dest) or ()), *values))


def add_config_options(parser: argparse.ArgumentParser, config_class, skip: tuple[str, ...] = ()) -> dict:
    """One option per setting of the ``config_class`` dataclass (``config_settings``: a field, or a field of a
    nested dataclass such as a task's budget), named ``--setting-name`` (or ``metadata["option"]``), typed by its
    default (a tuple: comma-separated values; a bool: a flag), helped by ``metadata["help"]`` (after its group's
    heading); ``metadata`` ``min`` (integers, else 1) and ``choices``/``what`` (names) check the values. Returns
    {argparse dest: attribute path} (``with_settings`` takes the paths)."""
    dests = {}
    for setting in config_settings(config_class()):
        if setting.path in skip:
            continue
        meta, default = setting.field.metadata, setting.value
        option = meta.get("option", setting.name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = meta.get("help", setting.name.replace("_", " "))
        help_text = f"{setting.heading}: {help_text} ({shown})" if setting.heading else f"{help_text} ({shown})"
        flag = "--" + option.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=option, action="store_true", default=None, help=help_text)
        elif isinstance(default, tuple):
            sample = default[0] if default else ""
            one = element_type(sample, meta)
            expected = "integers >= {}".format(meta.get("min", 1)) if isinstance(sample, int) else None
            expected = "positive numbers" if isinstance(sample, float) else expected
            parser.add_argument(flag, dest=option, type=list_of(one, expected), action=Extend, help=help_text)
        else:
            parser.add_argument(flag, dest=option, type=element_type(default, meta, setting.field.type), help=help_text)
        dests[option] = setting.path
    return dests


def element_type(sample, meta, annotation: str = ""):
    """The argparse type of a field's values: names from ``choices``; integers >= ``min`` (else >= 1, or >= 0
    where the default is 0, as a seed); positive numbers; else text."""
    if "choices" in meta:
        return names(tuple(meta["choices"]), meta.get("what", "value"))
    if isinstance(sample, bool):
        return str
    if isinstance(sample, int) or (sample is None and "int" in str(annotation)):
        return at_least(meta.get("min", 0 if sample == 0 else 1))
    if isinstance(sample, float) or (sample is None and "float" in str(annotation)):
        return positive_float
    return str


# One option per DataSpec field but ``source`` (which is --data): its argparse type or choices and its help.
SCORE_ALL_HELP = (
    f"score every held-out element (default: a part longer than {SCORE_LIMIT:,} is scored on {SCORE_BLOCKS} spread "
    "blocks, with the NLL's standard error)"
)
DATA_OPTION_HELP = {
    "valid_fraction": (fraction, "held-out share (text 0.1, series 0.2, audio 0.1)"),
    "column": (str, "CSV: value column(s), comma-separated for several series (Close)"),
    "date_column": (str, "CSV: date column (Date, if present)"),
    "id_column": (str, "CSV in long form: the column naming each row's series"),
    "fill": (FILL_POLICIES, "CSV: what to do with missing values (default: refuse)"),
    "transform": (str, "CSV: log, diff, log_return, standardize or none, comma-chained (log_return)"),
    "covariates": (str, "CSV: past covariate column(s) as extra inputs of the neural models"),
    "features": (FEATURES, "CSV: a derived past covariate after those: range, Parkinson's variance from High, Low"),
    "audio_encoding": (AUDIO_ENCODINGS, "audio: vocoder frames, mu_law levels or raw values (vocoder)"),
    "sample_rate": (positive_int, "audio: resample to this rate in Hz (the file's)"),
    "encoding": (str, "text: the file's character encoding (utf-8; latin-1 reads any bytes)"),
}
DATA_OPTIONS = tuple(f.name for f in dataclasses.fields(DataSpec) if f.name not in ("source", *RECORDED_FIELDS))


def add_data_options(parser: argparse.ArgumentParser, series_only: bool = False, note: str = "") -> tuple[str, ...]:
    """The data options, ``--valid-fraction`` to ``--sample-rate`` (``DataSpec``'s fields), in a group "data"
    (``note`` after its title); ``series_only``: without the audio and text ones, for the commands that read only
    a CSV.
    Every command reading a file of that kind takes the same ones. Returns their names (argparse dests)."""
    group = parser.add_argument_group("data" + (f" ({note})" if note else ""))
    names = tuple(n for n in DATA_OPTIONS if not (series_only and n in (*AUDIO_FIELDS, *TEXT_FIELDS)))
    for name in names:
        add_data_option(group, name)
    return names


def add_data_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str) -> None:
    """One data option, ``--`` + ``name`` (a ``DataSpec`` field), with its type or choices and help from
    ``DATA_OPTION_HELP``: what ``add_data_options`` adds for each, and what a command that reads only text
    (``compare``, ``explore``: ``--encoding``) adds alone."""
    kind, help_text = DATA_OPTION_HELP[name]
    typed = {"choices": kind} if isinstance(kind, tuple) else {"type": kind}
    parser.add_argument("--" + name.replace("_", "-"), **typed, help=help_text)


def given(args: argparse.Namespace, names) -> dict:
    """The options among ``names`` that were given (argparse's None: left out)."""
    return {k: v for k, v in ((n, getattr(args, n, None)) for n in names) if v is not None}


# -- the options several commands share, written once --------------------------------------------------------
def add_model_dir(parser: argparse.ArgumentParser, default: str | None, help_text: str = "model directory") -> None:
    """The model directory a command reads: positional, ``default`` when left out (None: required)."""
    if default is None:
        parser.add_argument("dir", type=path_name, help=help_text)
    else:
        parser.add_argument("dir", nargs="?", type=path_name, default=default, help=f"{help_text} (default: {default})")


def add_seed(parser, default: int | None = 0, help_text: str = "random seed") -> None:
    shown = f" ({default})" if default is not None else ""
    parser.add_argument("--seed", type=non_negative_int, default=default, help=help_text + shown)


def add_json(parser, help_text: str = "print the results as JSON") -> None:
    parser.add_argument("--json", action="store_true", help=help_text)


def add_no_progress(parser, help_text: str = "no progress bars") -> None:
    parser.add_argument("--no-progress", action="store_true", help=help_text)


def order(text: str) -> int | str:
    """An argparse type for a model's order: a non-negative integer, or aic / bic (chosen by the criterion)."""
    if text in ("aic", "bic"):
        return text
    try:
        return non_negative_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, aic or bic, got {text!r}") from None


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")
