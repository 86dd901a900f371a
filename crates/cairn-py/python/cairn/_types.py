"""Type aliases shared by the public modules."""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Union

#: A length of time: seconds (int or float), a ``datetime.timedelta``, or text such as
#: ``"90s"``, ``"1h30m"`` or ``"2d"``, whose grammar ``help(cairn.parse_duration)`` states.
Duration = Union[int, float, datetime.timedelta, str]

#: What the store keeps with its type: str, int, float, bool, None, bytes, and dicts and lists
#: of JSON values. Tuples are stored as JSON arrays and read back as lists.
Value = Union[str, int, float, bool, None, bytes, List[Any], Dict[str, Any]]

#: An item id of the ledger: a str, or an int taken as its decimal text.
Id = Union[str, int]

#: A file path.
StrPath = Union[str, "os.PathLike[str]"]
