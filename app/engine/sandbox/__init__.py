"""The filter sandbox: worker processes that run untrusted filter code, many (trader, symbol)
evaluations at once, isolated from the engine and from each other's failures.

Why processes: a filter that loops in C (`10**10**10`), exhausts memory or crashes must not
stall or kill the engine, and a filter that escaped the language must find nothing to take.

- `jobs`: what callers hand the sandbox and get back (`FilterJob`, `FilterOutcome`, ...);
- `pool`: `FilterSandbox`, which splits symbols between workers and keeps their candle
  replicas up to date incrementally, per candle source;
- `process`: the supervision of one worker (progress memfd, stall kill, crash blame);
- `messages` and `wire`: the protocol, plain data both ways, checked on arrival;
- `worker`: the worker's loop; `namespace`: the world a filter runs in;
- `isolation`: what a worker gives up before it runs a filter.
"""

from app.engine.sandbox.jobs import (
    CandleSource,
    FilterJob,
    FilterMatch,
    FilterOutcome,
    SandboxError,
    SandboxLimits,
    TickerValues,
)
from app.engine.sandbox.pool import FilterSandbox

__all__ = [
    "CandleSource",
    "FilterJob",
    "FilterMatch",
    "FilterOutcome",
    "FilterSandbox",
    "SandboxError",
    "SandboxLimits",
    "TickerValues",
]
