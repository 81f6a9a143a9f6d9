"""The Lua scripts of fleet mode (documented with the key layout in ``_fleet/__init__``).

Every script runs atomically inside Redis and reads the time from ``TIME`` there, so the
processes of a fleet never compare their own clocks.
"""

from __future__ import annotations

__all__ = ["ADVANCE", "CLAIM", "CUBIC_RATE", "CUT", "LOOK", "PUBLISH", "RELEASE", "TAKE"]

# The CUBIC curve, the one place the Lua computes it: the twin of
# ``_ratelimit._cubic.cubic_rate`` (same arguments, same arithmetic; CUBIC_RATE lets a
# test compare the two). RFC 8312 section 4.1: W(t) = C (t - K)^3 + W_max, with
# K = (W_max (1 - beta) / C)^(1/3) the time from beta * W_max back to W_max; past W_max
# the curve grows at ``probe`` times C (the fleet passes 1: plain CUBIC).
_CUBIC = """
local function cubic_rate(since_cut, w_max, beta, scale, probe)
  local t = since_cut - (w_max * (1 - beta) / scale) ^ (1 / 3)
  if t > 0 then scale = scale * probe end
  return scale * t ^ 3 + w_max
end
"""

# The rate shared by TAKE and CUT: the slow-start rate until the first throttle (if the
# fleet has a slow start: ``initial`` > 0, no max_rate), then the CUBIC rate since the
# last cut (``_CUBIC``); clamped to [min_rate, max_rate]; nil while nothing limits (no
# max_rate, no slow start, no throttle yet).
_RATE = (
    _CUBIC
    + """
local function slow_rate(b, initial, min_rate)
  if initial <= 0 or b.w_max then return nil end
  return tonumber(b.slow) or math.max(initial, min_rate)
end
local function fill_rate(b, now, max_rate, min_rate, beta, scale, slow)
  local rate = slow
  local w_max = tonumber(b.w_max)
  if w_max then
    local since_cut = now - tonumber(b.last_cut)
    rate = math.max(min_rate, cubic_rate(since_cut, w_max, beta, scale, 1))
  end
  if max_rate > 0 then
    if rate then rate = math.min(rate, max_rate) else rate = max_rate end
  end
  return rate
end
local function capacity(rate, burst)
  if burst > 0 then return burst end
  return math.max(1, (rate or 0) * 0.05)
end
local function load(key)
  local v = redis.call('HMGET', key, 'tokens', 'ts', 'w_max', 'last_cut',
                       'win_start', 'win_ok', 'measured', 'slow', 'limited_at')
  return {tokens = v[1], ts = v[2], w_max = v[3], last_cut = v[4],
          win_start = v[5], win_ok = v[6], measured = v[7], slow = v[8],
          limited_at = v[9]}
end
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""
)

#: Evaluate the CUBIC curve (``_CUBIC``) at chosen inputs, and nothing else: the test that
#: the Lua and ``_ratelimit.cubic_rate`` agree calls it. KEYS: none. ARGV: since_cut (s),
#: w_max, beta, scale, probe. Returns the rate as a string of 17 significant digits.
CUBIC_RATE = (
    _CUBIC
    + """
local since_cut, w_max = tonumber(ARGV[1]), tonumber(ARGV[2])
local beta, scale, probe = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
return string.format('%.17g', cubic_rate(since_cut, w_max, beta, scale, probe))
"""
)

#: Reserve ``want`` tokens from the fleet's bucket and report successes.
#: KEYS: budget hash. ARGV: max_rate (<= 0: none), burst (<= 0: 50 ms of the rate),
#: want, min_rate, scale, successes since the last call, key ttl (ms), horizon (s),
#: initial rate (<= 0: no slow start), slow-start doubling time (s), beta.
#: The bucket may go into debt: token *i* of the reservation becomes usable when the
#: bucket would have held *i* tokens, ``(i - before) / rate`` seconds from now, so a
#: batch is spread out exactly as single requests would be (never a burst beyond it).
#: A reservation reaches at most ``horizon`` seconds ahead (at least one token), so a
#: rate that changes meanwhile is picked up soon.
#: Slow start (``AdaptiveRateLimiter``'s, fleet-wide): until the first throttle the rate
#: is ``slow`` (from ``initial``); each success reported multiplies it by
#: ``2 ^ (1 / max(1, slow * doubling))`` (it doubles every ``doubling`` seconds of
#: answers) while the rate is what holds requests back: a take that found the bucket
#: short (``limited_at``) less than ``doubling`` ago. The grown rate applies from the
#: next take. Returns {granted, before (tokens before the take), rate (-1: unlimited),
#: server_now} (floats as strings).
TAKE = (
    _RATE
    + """
local key = KEYS[1]
local max_rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local min_rate, scale, ok = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local initial, doubling, beta = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local now = server_now()
local b = load(key)
-- Success rate in fixed windows of >= 1 s (as botocore's measured_tx_rate).
local ws, wok = tonumber(b.win_start) or now, (tonumber(b.win_ok) or 0) + ok
local measured = tonumber(b.measured) or 0
if now - ws >= 1 then measured = wok / (now - ws); ws = now; wok = 0 end
local slow = slow_rate(b, initial, min_rate)
local rate = fill_rate(b, now, max_rate, min_rate, beta, scale, slow)
local before = want
if rate then
  local cap = capacity(rate, burst)
  local tokens, ts = tonumber(b.tokens), tonumber(b.ts)
  if not tokens then tokens = cap; ts = now end
  tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
  before = tokens
  want = math.max(1, math.min(want, math.floor(tokens + rate * tonumber(ARGV[8]))))
  redis.call('HSET', key, 'tokens', tostring(tokens - want), 'ts', tostring(now))
end
if slow then
  local limited_at = tonumber(b.limited_at)
  if before < want then limited_at = now end
  if limited_at and now - limited_at < doubling then
    -- Growth is paid for by answers (RFC 5681, in rate form), and only while the rate
    -- limits (RFC 7661): a rate nobody uses proves nothing. At most 1000 answers a take.
    for _ = 1, math.min(ok, 1000) do slow = slow * 2 ^ (1 / math.max(1, slow * doubling)) end
  end
  redis.call('HSET', key, 'slow', tostring(slow), 'limited_at', tostring(limited_at or 0))
end
redis.call('HSET', key, 'win_start', tostring(ws), 'win_ok', tostring(wok),
           'measured', tostring(measured))
redis.call('PEXPIRE', key, ARGV[7])
return {want, tostring(before), tostring(rate or -1), tostring(now)}
"""
)

#: A throttle: cut the fleet's rate once per congestion event (CUBIC multiplicative cut).
#: KEYS: budget hash. ARGV: sent_at (server time), max_rate, burst, min_rate, beta, scale,
#: key ttl (ms), initial rate (<= 0: no slow start), slow-start exit fraction.
#: The first throttle ends the slow start: ``w_max`` becomes ``exit`` times the
#: slow-start rate (the measured rate lags a doubling ramp), as in AdaptiveRateLimiter.
#: Returns 1 if the rate was cut, 0 if the throttle belongs to a congestion event
#: already answered (its request was sent before the last cut).
CUT = (
    _RATE
    + """
local key = KEYS[1]
local sent_at, max_rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local min_rate, beta, scale = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local initial, exit = tonumber(ARGV[8]), tonumber(ARGV[9])
local now = server_now()
local b = load(key)
if b.last_cut and sent_at < tonumber(b.last_cut) then return 0 end
local slow = slow_rate(b, initial, min_rate)
local current = fill_rate(b, now, max_rate, min_rate, beta, scale, slow)
local measured = tonumber(b.measured) or 0
if measured <= 0 and b.win_start then
  local elapsed = now - tonumber(b.win_start)
  if elapsed > 0.05 then measured = (tonumber(b.win_ok) or 0) / elapsed end
end
-- The fleet's acceptance rate is the best estimate of the account's limit.
local w_max = nil
if current and current > 0 then w_max = current end
if measured > 0 and (not w_max or measured < w_max) then w_max = measured end
if slow then w_max = slow * exit end
w_max = math.max(w_max or min_rate, min_rate)
local cap = capacity(beta * w_max, burst)
local tokens = math.min(tonumber(b.tokens) or cap, cap)
redis.call('HSET', key, 'w_max', tostring(w_max), 'last_cut', tostring(now),
           'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('HDEL', key, 'slow', 'limited_at')
redis.call('HINCRBY', key, 'cuts', 1)
redis.call('PEXPIRE', key, ARGV[7])
return 1
"""
)

#: Claim or renew leases. KEYS: lease keys. ARGV: owner id, ttl (ms), room: how many
#: free leases to take at most (-1: all). The caller's own leases are always renewed.
#: Returns one flag per key: 1 the caller holds the lease now (renewed or newly taken),
#: 0 another process holds it, 2 it is free but was left for others (no room).
CLAIM = """
local owner, ttl, room = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == owner then
    redis.call('PEXPIRE', key, ttl)
    out[i] = 1
  elseif holder then
    out[i] = 0
  elseif room ~= 0 then
    redis.call('SET', key, owner, 'PX', ttl)
    out[i] = 1
    if room > 0 then room = room - 1 end
  else
    out[i] = 2
  end
end
return out
"""

#: Give leases back. KEYS: lease keys. ARGV: owner id. Only the holder's keys are deleted.
RELEASE = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key); n = n + 1 end
end
return n
"""

#: Compare-and-set a job's last status, publishing the change exactly once fleet-wide.
#: Statuses only move forward (STARTING < INPROGRESS < STOPPING < terminal), so a stale
#: answer (a describe sent before a lease hand-over) can never move a job back, and
#: nothing follows a terminal status. Every call is a look at the job: ``t`` (server
#: time) becomes now, so a process that takes the job's lease over knows when the job
#: is due. KEYS: job hash, events stream.
#: ARGV: job name, status, description JSON, origin id, stream MAXLEN, job ttl (s).
#: Returns 1 if this call published the change, 0 if the fleet already knew it.
PUBLISH = """
local rank = {STARTING = 0, INPROGRESS = 1, STOPPING = 2,
              COMPLETED = 3, FAILED = 3, STOPPED = 3}
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local current = redis.call('HGET', KEYS[1], 's')
local new = ARGV[2]
if current and rank[new] <= rank[current] then
  if now > (tonumber(redis.call('HGET', KEYS[1], 't')) or 0) then
    redis.call('HSET', KEYS[1], 't', tostring(now))
  end
  return 0
end
redis.call('HSET', KEYS[1], 's', new, 'd', ARGV[3], 't', tostring(now))
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
           'j', ARGV[1], 's', new, 'p', current or '', 'd', ARGV[3], 'o', ARGV[4])
return 1
"""

#: Record looks at jobs whose status did not change (describe answers a process got):
#: ``t`` of each job hash becomes the server time the answer came, ``now - age``, unless
#: it is later already. A hash that does not exist is left alone (no status to go with).
#: KEYS: job hashes. ARGV: per key, seconds since the answer (the caller's own clock:
#: a duration, never a timestamp compared across processes). Returns nothing.
LOOK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i, key in ipairs(KEYS) do
  local seen = now - tonumber(ARGV[i])
  local old = redis.call('HGET', key, 't')
  if redis.call('EXISTS', key) == 1 and seen > (tonumber(old) or 0) then
    redis.call('HSET', key, 't', tostring(seen))
  end
end
return 0
"""

#: Move the fleet's sweep watermark forward (never back: a holder that lost the lease
#: without knowing it yet may report an older one). KEYS: watermark key.
#: ARGV: watermark (epoch seconds, as the sweeper's wall clock gave it), ttl (s).
#: Returns 1 if it moved.
ADVANCE = """
local old = tonumber(redis.call('GET', KEYS[1]))
if old and tonumber(ARGV[1]) <= old then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
