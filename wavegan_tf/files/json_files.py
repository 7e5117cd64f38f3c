"""Reading the small JSON files a run keeps (settings, metadata) with an error naming the file."""

import json


def read_json(path, what=None):
    """The parsed contents of the JSON file ``path``.

    Raises ValueError ``cannot read <what> '<path>': <reason>`` when the file cannot be opened
    is not UTF-8 or is not JSON, so the message names the file and, with ``what``, what it should hold.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        label = f"{what} {path!r}" if what else repr(path)
        raise ValueError(f"cannot read {label}: {err}") from err
