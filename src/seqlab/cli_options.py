"""Command-line option machinery: argparse types whose errors say what was expected, and options generated
from a config dataclass (each setting one ``--setting-name``), so the CLI never maps a config by hand."""

from __future__ import annotations

import argparse
import math

from seqlab.experiments.common import config_settings


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
