"""The suite's module order (tests/conftest.py): the slowest named first, the rest after."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests import conftest

ROOT = Path(__file__).resolve().parents[2]


def test_each_module_named_slowest_exists():
    """A renamed or removed module would drop out of the order without a word."""
    missing = [m for m in conftest.SLOWEST_MODULES if not (ROOT / m).is_file()]
    assert missing == []
    assert len(set(conftest.SLOWEST_MODULES)) == len(conftest.SLOWEST_MODULES)


def test_the_slowest_lead_in_their_order_and_the_rest_keep_theirs():
    first, second = conftest.SLOWEST_MODULES[:2]
    names = ["tests/unit/a.py::x", f"{second}::y", "tests/unit/b.py::z", f"{first}::w",
             f"{second}::v", "tests/unit/a.py::u"]  # fmt: skip
    items = [SimpleNamespace(nodeid=n) for n in names]
    conftest.pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert [i.nodeid for i in items] == [f"{first}::w", f"{second}::y", f"{second}::v",
                                         "tests/unit/a.py::x", "tests/unit/b.py::z",
                                         "tests/unit/a.py::u"]  # fmt: skip
