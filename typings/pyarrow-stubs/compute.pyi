# pyarrow.compute builds most of its functions at import time (_make_global_functions() puts one
# per kernel of Arrow's C++ registry into globals()), so a checker reading compute.py sees no
# pc.equal, pc.is_in, pc.if_else... and pyarrow 22 ships no stubs. This partial stub package
# ("partial" in py.typed: every other pyarrow module is read from the installed package) types
# the module's attributes as Any, as pyright does for any untyped library.
from typing import Any

def __getattr__(name: str) -> Any: ...
