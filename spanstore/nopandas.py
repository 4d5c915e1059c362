"""Keep pandas out of the collector's processes.

pyarrow imports pandas the first time it converts Python objects, and unpickling a Table
does too. pandas is not used on the ingest path, yet importing it costs time and resident
memory in the server and in every decoder process (docs/performance.md).
:func:`keep_pandas_out` makes ``import pandas`` fail with ImportError in this process;
pyarrow then treats pandas as absent, and polars' lazy optional import still works (it
never touches pandas unless asked to convert to it). The Streamlit UI runs in its own
process and is unaffected.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["keep_pandas_out"]


class _RefusingLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        raise ImportError(f"{spec.name} is kept out of this seqtrace process (memory, start-up)")

    def exec_module(self, module: ModuleType) -> None:  # pragma: no cover - never reached
        raise ImportError(module.__name__)


class _PandasFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            # A spec (not an exception) so that "is pandas installed?" checks still work.
            return importlib.machinery.ModuleSpec(fullname, _RefusingLoader())
        return None


def keep_pandas_out() -> None:
    """Make later ``import pandas`` raise ImportError in this process (idempotent)."""
    if "pandas" in sys.modules:
        return  # too late: someone already imported it; nothing to gain
    if not any(isinstance(finder, _PandasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PandasFinder())
