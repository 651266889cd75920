"""Runs mutually recursive generator functions on a stack of their own, not Python's.

Go's template parser and executor recurse once per nested action or parenthesis,
and Go's stacks grow to a gigabyte, so a template nested 20,000 deep simply works.
Python stops at about a thousand frames. The parser and the executor are therefore
written as generators: where the Go code calls itself, ours yields the generator of
the call (``value = yield self.pipeline(...)``), and :func:`run` drives them all
from one loop with a list as the stack, sending each one's return value back to
its caller and throwing each one's exception into it, so that ``try``/``finally``
and ``except`` in the callers work as they would with real calls.

Never use ``yield from`` for such a call: Python nests delegated generators on its
own stack.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

T = TypeVar("T")

# A function run by the trampoline: it yields the generators of the calls it makes
# and receives their results.
Step = Generator[Any, Any, T]


def run(root: Step[T]) -> T:
    """Drive ``root`` and every generator it (transitively) yields; its return value.

    An exception raised by a generator is thrown into the one that yielded it, and
    out of ``run`` if ``root`` does not handle it.
    """
    stack: list[Step[Any]] = [root]
    value: Any = None
    error: BaseException | None = None
    while True:
        top = stack[-1]
        try:
            if error is None:
                call = top.send(value)
            else:
                failure, error = error, None
                call = top.throw(failure)
        except StopIteration as done:
            stack.pop()
            if not stack:
                return done.value
            value = done.value
            continue
        except BaseException as failure:  # noqa: BLE001 - handed to the caller, as a raise is
            stack.pop()
            if not stack:
                raise
            error = failure
            continue
        stack.append(call)
        value = None
