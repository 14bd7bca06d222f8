"""Circuit breakers whose state lives in Redis, so the whole fleet shares what one worker learns.

Built on the `circuitbreaker` package: `RedisCircuitBreaker` keeps its interface (`call`,
`state`, `failure_count`, `open_remaining`, `CircuitBreakerError`) and moves the state into a
Redis hash changed only by Lua scripts, so counts and transitions are atomic across processes:

    closed --(threshold failures within the window)--> open
    open --(cool-down over; exactly one caller takes the probe lease)--> half_open
    half_open --(the probe succeeds)--> closed     half_open --(the probe fails)--> open

A probe whose holder died is taken over once its lease expires. Redis's clock is the only
clock, so workers on different machines agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from time import monotonic
from types import TracebackType
from typing import ParamSpec, TypeVar

import redis
from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker
from circuitbreaker import CircuitBreakerError as CircuitBreakerError

P = ParamSpec("P")
T = TypeVar("T")
PREFIX = "mesh:breaker:"
PROBE_RECHECK_S = 1.0

# KEYS: state hash, failures zset. ARGV: now is Redis's; recovery s, lease s, token.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {'allow', '0'} end
if state == 'open' then
  local until_ = tonumber(redis.call('HGET', KEYS[1], 'opened_at')) + tonumber(ARGV[1])
  if now < until_ then return {'reject', tostring(until_ - now)} end
else
  local lease = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
  if now < lease then return {'probing', tostring(lease - now)} end
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_owner', ARGV[3],
           'probe_until', tostring(now + tonumber(ARGV[2])))
redis.call('HINCRBY', KEYS[1], 'probes', 1)
return {'probe', '0'}
"""

# ARGV: token.
_SUCCEED = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'half_open' and redis.call('HGET', KEYS[1], 'probe_owner') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'closed')
  redis.call('HDEL', KEYS[1], 'probe_owner', 'probe_until', 'opened_at')
  redis.call('DEL', KEYS[2])
  return 'closed'
end
return state
"""

# ARGV: token, threshold, window s, error text.
_FAIL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
redis.call('HINCRBY', KEYS[1], 'total_failures', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[4])
if state == 'half_open' then
  if redis.call('HGET', KEYS[1], 'probe_owner') == ARGV[1] then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now))
    redis.call('HDEL', KEYS[1], 'probe_owner', 'probe_until')
    return 'open'
  end
  return state
end
if state == 'open' then return state end
redis.call('ZADD', KEYS[2], now, ARGV[1] .. ':' .. tostring(now))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[3])) + 1)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now))
  redis.call('HINCRBY', KEYS[1], 'opened', 1)
  return 'open'
end
return 'closed'
"""

# Failures in the window, as the status page shows them. KEYS: failures zset. ARGV: window s.
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]), '+inf')
"""


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    window_seconds: float = 60.0
    recovery_seconds: float = 30.0
    probe_lease_seconds: float = 120.0  # longer than any one call may take


@dataclass(frozen=True)
class BreakerStatus:
    name: str
    state: str
    failures_in_window: int
    total_failures: int
    times_opened: int
    probes: int
    next_probe_at: datetime | None
    last_error: str | None


class RedisCircuitBreaker(CircuitBreaker):
    """A `circuitbreaker.CircuitBreaker` whose counts and state are shared through Redis."""

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        policy: BreakerPolicy,
        is_failure: Callable[[type[BaseException], BaseException], bool],
    ) -> None:
        super().__init__(
            failure_threshold=policy.failure_threshold,
            recovery_timeout=policy.recovery_seconds,
            expected_exception=is_failure,
            name=name,
        )
        self._redis, self._policy = client, policy
        self._keys = [f"{PREFIX}{name}", f"{PREFIX}{name}:failures"]
        self._admit = client.register_script(_ADMIT)
        self._succeed = client.register_script(_SUCCEED)
        self._fail = client.register_script(_FAIL)
        self._count = client.register_script(_COUNT)
        self._rejected_until = 0.0

    def call(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `func` unless the breaker is open; its outcome is counted fleet-wide."""
        if monotonic() < self._rejected_until:
            # Redis said when this breaker may next admit a call; asking sooner is wasted.
            raise CircuitBreakerError(self)
        token = uuid.uuid4().hex
        verdict, wait = self._admit(
            keys=self._keys,
            args=[self._policy.recovery_seconds, self._policy.probe_lease_seconds, token],
        )
        if verdict in (b"reject", b"probing"):
            # While another caller probes, its answer may close the breaker any moment.
            skip = float(wait) if verdict == b"reject" else min(float(wait), PROBE_RECHECK_S)
            self._rejected_until = monotonic() + skip
            raise CircuitBreakerError(self)
        is_probe = verdict == b"probe"
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            if self.is_failure(type(exc), exc):
                self._last_failure = exc
                self._fail(
                    keys=self._keys,
                    args=[
                        token,
                        self._policy.failure_threshold,
                        self._policy.window_seconds,
                        f"{type(exc).__name__}",
                    ],
                )
            elif is_probe:
                self._succeed(keys=self._keys, args=[token])
            raise
        if is_probe:  # a success while closed changes nothing, so it costs no round trip
            self._succeed(keys=self._keys, args=[token])
        return result

    def __enter__(self) -> None:
        raise TypeError("use RedisCircuitBreaker.call(); the context protocol has no token")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return False

    @property
    def state(self) -> str:
        raw = self._redis.hget(self._keys[0], "state")
        state = raw.decode() if raw else STATE_CLOSED
        if state == STATE_OPEN and self.open_remaining <= 0:
            return STATE_HALF_OPEN
        return state

    @property
    def failure_count(self) -> int:
        return int(self._count(keys=self._keys[1:], args=[self._policy.window_seconds]))

    @property
    def open_remaining(self) -> float:
        opened = self._redis.hget(self._keys[0], "opened_at")
        if opened is None:
            return 0
        seconds, micros = self._redis.time()
        return float(opened) + self._policy.recovery_seconds - (seconds + micros / 1e6)

    def reset(self) -> None:
        self._redis.delete(*self._keys)

    def status(self) -> BreakerStatus:
        raw = {k.decode(): v.decode() for k, v in self._redis.hgetall(self._keys[0]).items()}
        state = raw.get("state", STATE_CLOSED)
        next_probe = None
        if state == STATE_OPEN:
            opened_at = float(raw["opened_at"]) + self._policy.recovery_seconds
            next_probe = datetime.fromtimestamp(opened_at, UTC)
        return BreakerStatus(
            name=self.name,
            state=self.state,
            failures_in_window=self.failure_count,
            total_failures=int(raw.get("total_failures", 0)),
            times_opened=int(raw.get("opened", 0)),
            probes=int(raw.get("probes", 0)),
            next_probe_at=next_probe,
            last_error=raw.get("last_error"),
        )


class BreakerBoard:
    """One breaker per model (provider/model), all sharing one Redis and one policy."""

    def __init__(
        self,
        client: redis.Redis,
        policy: BreakerPolicy,
        is_failure: Callable[[type[BaseException], BaseException], bool] = lambda *_: True,
    ) -> None:
        self._redis, self._policy, self._is_failure = client, policy, is_failure
        self._breakers: dict[str, RedisCircuitBreaker] = {}

    def breaker(self, name: str) -> RedisCircuitBreaker:
        if name not in self._breakers:
            self._breakers[name] = RedisCircuitBreaker(
                self._redis, name, self._policy, self._is_failure
            )
        return self._breakers[name]

    def known(self) -> list[str]:
        """Every name that has a breaker in Redis, whichever process made it."""
        names = set()
        for key in self._redis.scan_iter(match=f"{PREFIX}*", count=200):
            name = key.decode().removeprefix(PREFIX)
            if not name.endswith(":failures"):
                names.add(name)
        return sorted(names)
