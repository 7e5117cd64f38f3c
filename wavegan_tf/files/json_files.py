"""Reading the small JSON files a run keeps (settings, metadata) with an error naming the file."""

import json
import math


def read_json(path, what=None):
    """The parsed contents of the JSON file ``path``.

    Raises ValueError ``cannot read <what> '<path>': <reason>`` when the file cannot be opened
    is not UTF-8 or is not JSON, so the message names the file and, with ``what``, what it should hold.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError, RecursionError) as err:
        # ValueError: not UTF-8, not JSON, or an integer of more digits than Python converts;
        # RecursionError: nesting deeper than the parser goes.
        label = f"{what} {path!r}" if what else repr(path)
        reason = str(err) if not isinstance(err, RecursionError) else "nested too deeply"
        raise ValueError(f"cannot read {label}: {reason}") from None


def read_fields(path, what, fields):
    """The JSON object in ``path`` whose keys are the names of ``fields`` (the
    ``dataclasses.fields`` of the settings it holds), each value of its field's type.

    A field typed ``int`` takes an integer (not a boolean), ``float`` a finite number, ``str`` a
    string, ``bool`` a boolean and ``list`` a list; a field whose default is None also takes
    null. Raises ValueError ``cannot use <what> '<path>': <reason>`` naming the file, the key
    and the value otherwise (and :func:`read_json`'s error for a file that is not JSON).
    """
    values = read_json(path, what)
    problem = _fields_problem(values, fields)
    if problem:
        raise ValueError(f"cannot use {what} {path!r}: {problem}")
    return values


_KINDS = {"int": "an integer", "float": "a finite number", "str": "a string",
          "bool": "true or false", "list": "a list"}


def _fields_problem(values, fields):
    if not isinstance(values, dict):
        return f"it holds a JSON {type(values).__name__}, not an object of settings"
    by_name = {field.name: field for field in fields}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        return f"unknown keys {unknown}; known keys: {sorted(by_name)}"
    for name, value in values.items():
        field = by_name[name]
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        if kind not in _KINDS or (value is None and field.default is None):
            continue
        if not _is_kind(value, kind):
            text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            return f"{name} must be {_KINDS[kind]}, got {text}"
    return None


def _is_kind(value, kind):
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value)
    return isinstance(value, {"str": str, "bool": bool, "list": list}[kind])
