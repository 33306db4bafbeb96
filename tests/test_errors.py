"""One error root: every exception class in framework/ is a HilError (framework/errors.py).

A caller catches "anything the framework raised on purpose" with one ``except HilError``;
input errors are ``InputError`` (and still ``ValueError``), rig faults ``RigFault`` (a
*broken* case). Classes keep the standard base they had, so older except clauses still work.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import framework
from framework.errors import HilError, InputError, RigFault


def _framework_exception_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(framework.__path__, "framework."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) \
                    and obj.__module__ == info.name:
                found.append(obj)
    return found


def test_every_framework_exception_derives_from_hil_error() -> None:
    classes = _framework_exception_classes()
    assert len(classes) > 30  # the walk found the package's exceptions, not nothing
    strays = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes
                    if not issubclass(c, HilError))
    assert strays == [], f"derive these from framework.errors (HilError/InputError/RigFault): {strays}"


def test_the_kinds_keep_their_standard_bases() -> None:
    from framework.console import ConsoleTimeout
    from framework.dhcp.transcript import DhcpWaitTimeout
    from framework.rig import RigError, SecretError
    from framework.rig.bounded_yaml import YamlBoundError
    from framework.services.content import ContentUnavailable

    assert issubclass(InputError, ValueError) and issubclass(RigFault, RuntimeError)
    assert issubclass(RigError, InputError) and issubclass(SecretError, LookupError)
    assert issubclass(YamlBoundError, InputError)
    assert issubclass(ConsoleTimeout, RuntimeError) and issubclass(DhcpWaitTimeout, TimeoutError)
    assert issubclass(ContentUnavailable, FileNotFoundError)
    assert not issubclass(RigFault, InputError) and not issubclass(InputError, RigFault)
