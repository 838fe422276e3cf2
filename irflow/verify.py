"""Verifying a module: every op's verifier, the first failure as a `VerifyError`.

Used by the frontends (after building a module), the pass manager (after each pass)
and the simulator (after lowering); it sits below all of them.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import VerifyException

from irflow.diagnostics import VerifyError


def verify_module(module: ModuleOp, context: str = "") -> None:
    """Verify every op; the first failure becomes a `VerifyError` naming that op.

    `context` prefixes the message (the pass manager says which pass broke the IR).
    """
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except (VerifyException, ValueError) as e:
            msg = str(e.args[0]) if e.args else str(e)
            msg = msg.removeprefix("Operation does not verify: ")
            raise VerifyError(f"{context}{msg}", op) from None


__all__ = ["verify_module"]
