"""The warning every deprecated name or spelling of the package raises (torch-free)."""

from __future__ import annotations


class CaptumCertifiedDeprecationWarning(DeprecationWarning):
    """A name or spelling of captum-certified that still works in this release and will be
    removed in the next one; the message names its replacement.

    A subclass of ``DeprecationWarning``, so the usual filters apply; filter on this class to
    act on the package's own deprecations only (its test suite turns them into errors).
    """
