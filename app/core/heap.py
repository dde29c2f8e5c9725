"""The long-lived part of a server process's heap, kept out of the garbage collector's passes.

Once started, a server process holds about 190,000 objects that live as long as it does
(the GraphQL schema, the ORM's models, google-genai's pydantic types, the market's
series). A full collection of the cyclic garbage collector walks every one of them: 75 to
90 ms measured here, at whatever moment enough young objects survived, in the middle of a
screen or an order as well. `gc.freeze()` after start-up moves what exists then into a
permanent generation that collections skip (CPython's documentation recommends it before
forking workers, for the same reason), so a full pass later walks only what came after.

The price: a reference cycle among the frozen objects that becomes garbage is never freed.
The objects of the start-up live for the whole process anyway, and objects freed by their
reference count (almost all of them) are freed as before. Only the processes' entry points
call this (`traders serve`, `traders engine`, a sandbox worker once warmed up, and the
benchmarks that measure what they do), never a library call, so a test process that starts
many apps keeps its collector whole.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> int:
    """Collect what is garbage now, then freeze the rest; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
