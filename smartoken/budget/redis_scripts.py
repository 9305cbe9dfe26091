"""The Lua scripts of the Redis reserver. Each runs atomically inside Redis.

Key layout under the prefix P (A = account id, K = key id, W = a day or month window):

    P:ab:A      hash {bal, ver, gen}    wallet balance loaded from the ledger + batches since
    P:av:A      string                  highest wallet version a ledger batch announced (1 h TTL;
                                        follows the database down after a restore, see LOAD)
    P:ar:A      string                  sum held by the account's reservations: worst case while
                                        running, actual cost once settled until its ledger
                                        batch commits
    P:ks:K:W    hash {spent, ver, gen}  key spend in window W loaded from the ledger + batches
    P:kr:K:W    string                  sum held by the key's reservations in window W
    P:done:O:N  string                  batch N of replica O was applied (AFTER_BATCH retries)
    P:sums      set                     names of the ar/kr sums (RECONCILE recomputes them)
    P:reconcile string                  RECONCILE ran less than ``counter_ttl`` seconds ago
    P:res       sorted set              reservation id -> deadline (epoch seconds)
    P:resd      hash                    reservation id -> "A|K|day|month|amount"
    P:alive:O   string (3 s TTL)        replica O is alive (refreshed every second)
    P:own:O     set                     reservation ids of replica O (some may be gone already)
    P:owners    set                     replicas that registered an ``own`` set
    P:fence     set (expiring)          replicas still to push what they spent while Redis was
                                        unreachable to them (fail-open, see REJOIN); while it
                                        exists, RESERVE and HOLD refuse to use the counters

Every key heals (issue 12, item 10). Loaded counters (``ab``, ``ks``) expire and are reloaded;
the floor ``av`` expires and follows a database restored to an older version; reservation sums
(``ar``, ``kr``) move with reservations, which settle or expire, and are recomputed from the
reservations every ``counter_ttl`` seconds (RECONCILE); ``res``/``resd`` entries are swept when
their deadline passes; ``done`` keys expire after an hour.
"""

from __future__ import annotations

# KEYS: ab ar ksd krd ksm krm res resd epoch sums own fence
# ARGV: amount daily_limit(-1 none) monthly_limit(-1 none) id deadline meta now warm
# Idempotent per id: a retry after a lost answer does not reserve twice.
# While the fence exists ('fenced'), some replica has not yet pushed what it spent on its
# fail-open share: the counters may miss it, so they are not used (see REJOIN).
# The epoch key is set when replicas start. If it is gone, Redis lost its data: reservations in
# flight are unknown until their replicas' heartbeats re-register them, so every reservation is
# refused ('warming') for ``warm`` seconds (one heartbeat period).
RESERVE = """
local now = tonumber(ARGV[7])
local epoch = redis.call('GET', KEYS[9])
if not epoch then
  redis.call('SET', KEYS[9], now + tonumber(ARGV[8]))
  return {'warming', 0}
end
if tonumber(epoch) > now then return {'warming', 0} end
if redis.call('HEXISTS', KEYS[8], ARGV[4]) == 1 then return {'ok', 0} end  -- a retry
if redis.call('EXISTS', KEYS[12]) == 1 then return {'fenced', 0} end
local amount = tonumber(ARGV[1])
local need = ''
if redis.call('EXISTS', KEYS[1]) == 0 then need = need .. 'a' end
if redis.call('EXISTS', KEYS[3]) == 0 then need = need .. 'd' end
if redis.call('EXISTS', KEYS[5]) == 0 then need = need .. 'm' end
if need ~= '' then return {'load', need} end
local avail = tonumber(redis.call('HGET', KEYS[1], 'bal')) -
              tonumber(redis.call('GET', KEYS[2]) or '0')
if amount > avail then return {'wallet', avail} end
local limits = {{tonumber(ARGV[2]), KEYS[3], KEYS[4], 'daily'},
                {tonumber(ARGV[3]), KEYS[5], KEYS[6], 'monthly'}}
for _, l in ipairs(limits) do
  if l[1] >= 0 then
    local used = tonumber(redis.call('HGET', l[2], 'spent')) +
                 tonumber(redis.call('GET', l[3]) or '0')
    if used + amount > l[1] then return {l[4], used} end
  end
end
redis.call('INCRBY', KEYS[2], amount)
redis.call('INCRBY', KEYS[4], amount)
redis.call('INCRBY', KEYS[6], amount)
redis.call('SADD', KEYS[10], KEYS[2], KEYS[4], KEYS[6])
redis.call('ZADD', KEYS[7], ARGV[5], ARGV[4])
redis.call('HSET', KEYS[8], ARGV[4], ARGV[6])
redis.call('SADD', KEYS[11], ARGV[4])
return {'ok', 0}
"""

# KEYS: ab ar ksd krd ksm krm res resd epoch sums own fence  (key 0, windows 'hold')
# ARGV: amount id deadline meta now warm
# Sets money aside on the wallet while a negative adjustment is written: a reservation without
# a key, checked against the balance like RESERVE and released by SETTLE with 0.
HOLD = """
local now = tonumber(ARGV[5])
local epoch = redis.call('GET', KEYS[9])
if not epoch then
  redis.call('SET', KEYS[9], now + tonumber(ARGV[6]))
  return {'warming', 0}
end
if tonumber(epoch) > now then return {'warming', 0} end
if redis.call('EXISTS', KEYS[12]) == 1 then return {'warming', 0} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'load', 'a'} end
local amount = tonumber(ARGV[1])
local avail = tonumber(redis.call('HGET', KEYS[1], 'bal')) -
              tonumber(redis.call('GET', KEYS[2]) or '0')
if amount > avail then return {'wallet', avail} end
redis.call('INCRBY', KEYS[2], amount)
redis.call('INCRBY', KEYS[4], amount)
redis.call('INCRBY', KEYS[6], amount)
redis.call('SADD', KEYS[10], KEYS[2], KEYS[4], KEYS[6])
redis.call('ZADD', KEYS[7], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[8], ARGV[2], ARGV[4])
redis.call('SADD', KEYS[11], ARGV[2])
return {'ok', 0}
"""

# KEYS: ab ar ksd krd ksm krm res resd (9-12 unused) journal
# ARGV: id actual [journal line]
# With a journal line (the request's usage record as JSON), it is kept in the replica's
# journal hash under the request id first, in the same round trip (see LIVENESS).
# Turns a live reservation into its actual cost (0 releases it). The settled cost stays held in
# the reservation sums until the ledger batch that writes it has committed (AFTER_BATCH), so a
# counter reloaded from the ledger in between can never forget it. Returns 1 if the reservation
# was still held, 0 if it had expired (swept) or Redis lost it.
SETTLE = """
if ARGV[3] and ARGV[3] ~= '' then redis.call('HSET', KEYS[13], ARGV[1], ARGV[3]) end
local actual = tonumber(ARGV[2])
local meta = redis.call('HGET', KEYS[8], ARGV[1])
if not meta then return 0 end
local head, amount = string.match(meta, '^(.*|)([^|]+)$')
local delta = actual - tonumber(amount)
redis.call('INCRBY', KEYS[2], delta)
redis.call('INCRBY', KEYS[4], delta)
redis.call('INCRBY', KEYS[6], delta)
if actual == 0 then
  redis.call('ZREM', KEYS[7], ARGV[1])
  redis.call('HDEL', KEYS[8], ARGV[1])
else
  redis.call('HSET', KEYS[8], ARGV[1], head .. actual)
end
return 1
"""

# KEYS: res resd;  ARGV: now prefix
# Releases reservations whose deadline passed (their replica died or lost Redis for longer
# than the reservation TTL).
SWEEP = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
for _, id in ipairs(ids) do
  local meta = redis.call('HGET', KEYS[2], id)
  if meta then
    local a, k, d, m, amount = string.match(meta, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    redis.call('DECRBY', ARGV[2] .. 'ar:' .. a, amount)
    redis.call('DECRBY', ARGV[2] .. 'kr:' .. k .. ':' .. d, amount)
    redis.call('DECRBY', ARGV[2] .. 'kr:' .. k .. ':' .. m, amount)
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"""

# KEYS: res resd epoch sums own;  ARGV: prefix deadline now warm ttl force id1 meta1 id2 ...
# A replica's heartbeat: push the deadline of its live reservations and list them in its ``own``
# set. After Redis lost its data (epoch missing, or reset less than ``ttl`` ago), or with
# ``force`` (this replica was taken for dead and its reservations released, see LIVENESS),
# re-register those Redis forgot.
HEARTBEAT = """
local now = tonumber(ARGV[3])
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = now + tonumber(ARGV[4])
  redis.call('SET', KEYS[3], epoch)
end
local recent = ARGV[6] == '1' or tonumber(epoch) > now - tonumber(ARGV[5])
local restored = 0
for i = 7, #ARGV, 2 do
  local id, meta = ARGV[i], ARGV[i + 1]
  if redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    redis.call('SADD', KEYS[5], id)
  elseif recent then
    local a, k, d, m, amount = string.match(meta, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    redis.call('INCRBY', ARGV[1] .. 'ar:' .. a, amount)
    redis.call('INCRBY', ARGV[1] .. 'kr:' .. k .. ':' .. d, amount)
    redis.call('INCRBY', ARGV[1] .. 'kr:' .. k .. ':' .. m, amount)
    redis.call('SADD', KEYS[4], ARGV[1] .. 'ar:' .. a, ARGV[1] .. 'kr:' .. k .. ':' .. d,
               ARGV[1] .. 'kr:' .. k .. ':' .. m)
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    redis.call('HSET', KEYS[2], id, meta)
    redis.call('SADD', KEYS[5], id)
    restored = restored + 1
  end
end
return restored
"""

# KEYS: alive own owners resd res fence;  ARGV: prefix origin alive_ms
# Every second per replica (issue 12, item 8): refresh this replica's liveness key, drop ids of
# reservations that are gone from its ``own`` set, and release every reservation of a replica
# whose liveness key expired (killed, or stalled for longer than its TTL): within seconds, not
# at the reservation deadline. Returns {1 if this replica's key was still there, released,
# 1 if this replica is in the fence (it must push and acknowledge, see REJOIN), the journal
# keys claimed}. A dead replica's journal hash (``journal:<origin>``: request id -> usage record,
# ``p:<id>`` -> a running stream's last progress) and the journals it had claimed itself are
# renamed to ``jclaim:<this origin>:<n>`` (listed in ``jclaims:<this origin>``) in the same
# script, so exactly one live replica drains each (and a drainer that dies passes them on).
LIVENESS = """
local was = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[2])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('HEXISTS', KEYS[4], id) == 0 then redis.call('SREM', KEYS[2], id) end
end
local p = ARGV[1]
local released = 0
local claimed = {}
for _, o in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if o ~= ARGV[2] and redis.call('EXISTS', p .. 'alive:' .. o) == 0 then
    for _, id in ipairs(redis.call('SMEMBERS', p .. 'own:' .. o)) do
      local meta = redis.call('HGET', KEYS[4], id)
      if meta then
        local a, k, d, m, amount = string.match(meta,
          '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
        redis.call('DECRBY', p .. 'ar:' .. a, amount)
        redis.call('DECRBY', p .. 'kr:' .. k .. ':' .. d, amount)
        redis.call('DECRBY', p .. 'kr:' .. k .. ':' .. m, amount)
        redis.call('HDEL', KEYS[4], id)
        released = released + 1
      end
      redis.call('ZREM', KEYS[5], id)
    end
    redis.call('DEL', p .. 'own:' .. o)
    local src = {p .. 'journal:' .. o}
    for _, c in ipairs(redis.call('SMEMBERS', p .. 'jclaims:' .. o)) do src[#src + 1] = c end
    for _, s in ipairs(src) do
      if redis.call('EXISTS', s) == 1 then
        local dst = p .. 'jclaim:' .. ARGV[2] .. ':' .. redis.call('INCR', p .. 'jseq')
        redis.call('RENAME', s, dst)
        redis.call('SADD', p .. 'jclaims:' .. ARGV[2], dst)
        claimed[#claimed + 1] = dst
      end
    end
    redis.call('DEL', p .. 'jclaims:' .. o)
    redis.call('SREM', KEYS[3], o)
  end
end
return {was, released, redis.call('SISMEMBER', KEYS[6], ARGV[2]), claimed}
"""

# KEYS: counter floor;  ARGV: field value version gen ttl heal
# Writes a counter loaded from the ledger, unless one exists already, or the snapshot is older
# than a ledger batch already announced (it would miss that batch's debits): returns 0 then and
# the caller reads the ledger again, with ``heal`` set. A batch's floor is set only after the
# batch committed, so a snapshot read after a refusal is at or above the floor, unless the
# database went back in time (a restore): then the floor follows the database (returns 2).
LOAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local floor = tonumber(redis.call('GET', KEYS[2]) or '-1')
local out = 1
if tonumber(ARGV[3]) < floor then
  if ARGV[6] ~= '1' then return 0 end
  redis.call('SET', KEYS[2], ARGV[3], 'EX', 3600)
  out = 2
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 'ver', ARGV[3], 'gen', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return out
"""

# KEYS: floor done res resd;  ARGV: prefix version account id1 key1 day1 month1 cost1 id2 ...
# After a ledger batch committed with wallet ``version`` (one call per account and batch):
# release each record's settled reservation, and add its cost to each loaded counter whose
# snapshot is older than the batch (ver < version); a counter loaded at or after ``version``
# holds it already. Both in one step, so at any instant each cost is counted exactly once: held
# as a reservation, or in the counter. The ``done`` key (set once, expiring) makes a retry of
# the same batch a no-op. The floor moves up to ``version``: older snapshots are refused.
AFTER_BATCH = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', 3600) == false then return 0 end
local p, version, a = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local function add(counter, field, amount)
  if redis.call('EXISTS', counter) == 1 and
     tonumber(redis.call('HGET', counter, 'ver')) < version then
    redis.call('HINCRBY', counter, field, amount)
  end
end
for i = 4, #ARGV, 5 do
  local id, k, d, m, cost = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local meta = redis.call('HGET', KEYS[4], id)
  if meta then
    local ma, mk, md, mm, amount = string.match(meta,
      '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    redis.call('DECRBY', p .. 'ar:' .. ma, amount)
    redis.call('DECRBY', p .. 'kr:' .. mk .. ':' .. md, amount)
    redis.call('DECRBY', p .. 'kr:' .. mk .. ':' .. mm, amount)
    redis.call('HDEL', KEYS[4], id)
    redis.call('ZREM', KEYS[3], id)
  end
  add(p .. 'ab:' .. a, 'bal', -tonumber(cost))
  add(p .. 'ks:' .. k .. ':' .. d, 'spent', tonumber(cost))
  add(p .. 'ks:' .. k .. ':' .. m, 'spent', tonumber(cost))
end
local floor = tonumber(redis.call('GET', KEYS[1]) or '-1')
if version > floor then redis.call('SET', KEYS[1], version, 'EX', 3600) end
return 1
"""

# KEYS: floor balance;  ARGV: version
# A credit (or adjustment) was committed at wallet ``version`` by someone else: drop the loaded
# balance so the next request reloads it, and refuse snapshots older than the credit.
INVALIDATE = """
local floor = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > floor then redis.call('SET', KEYS[1], ARGV[1], 'EX', 3600) end
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: resd sums lock;  ARGV: prefix period
# Heals the reservation sums (``ar``, ``kr``, which are only ever moved, never reloaded): at most
# once per ``period`` (the lock), recompute every sum from the reservations themselves (resd) and
# fix any that drifted (a replica lost mid-script, Redis lost part of its data, a bug); a sum
# with no reservation left is deleted. Returns how many sums were fixed (-1: not this time).
RECONCILE = """
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[2]) == false then return -1 end
local p = ARGV[1]
local want = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local a, k, d, m, amount = string.match(all[i + 1],
    '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  amount = tonumber(amount)
  for _, name in ipairs({p .. 'ar:' .. a, p .. 'kr:' .. k .. ':' .. d,
                         p .. 'kr:' .. k .. ':' .. m}) do
    want[name] = (want[name] or 0) + amount
  end
end
local fixed = 0
for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local have = tonumber(redis.call('GET', name) or '0')
  local w = want[name] or 0
  if have ~= w then fixed = fixed + 1 end
  if w == 0 then
    redis.call('DEL', name)
    redis.call('SREM', KEYS[2], name)
  elseif have ~= w then
    redis.call('SET', name, w)
  end
  want[name] = nil
end
for name, w in pairs(want) do
  if tonumber(redis.call('GET', name) or '0') ~= w then fixed = fixed + 1 end
  redis.call('SET', name, w)
  redis.call('SADD', KEYS[2], name)
end
return fixed
"""

# KEYS: res resd sums own fence replicas
# ARGV: prefix deadline origin since fence_ms create id1 meta1 id2 meta2 ...
# Fail-open, Redis answers again (issue 12, item 9). A replica that could not reach Redis may
# have served on its share of each budget: before anyone uses the shared counters again, each
# replica pushes what they miss. Phase one (``create`` = 1, this replica lost Redis): register
# every reservation this replica holds that Redis does not know (fallback reservations still
# running at their worst case, fallback costs settled but not yet in a committed ledger batch at
# their actual cost, and its ordinary reservations, which a peer's LIVENESS may have released
# while its liveness key had expired), and raise the fence if there is none: every replica that
# heartbeated since ``since`` (this replica's outage start minus the reservation TTL), and this
# one, must acknowledge before RESERVE uses the counters again. Committed ledger batches are
# pushed by AFTER_BATCH before this script runs. Phase two is FENCE_ACK. Idempotent per id (an
# id Redis holds only has its deadline pushed). Returns how many ids were registered.
REJOIN = """
local restored = 0
for i = 7, #ARGV, 2 do
  local id, meta = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
  else
    local a, k, d, m, amount = string.match(meta, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    redis.call('INCRBY', ARGV[1] .. 'ar:' .. a, amount)
    redis.call('INCRBY', ARGV[1] .. 'kr:' .. k .. ':' .. d, amount)
    redis.call('INCRBY', ARGV[1] .. 'kr:' .. k .. ':' .. m, amount)
    redis.call('SADD', KEYS[3], ARGV[1] .. 'ar:' .. a, ARGV[1] .. 'kr:' .. k .. ':' .. d,
               ARGV[1] .. 'kr:' .. k .. ':' .. m)
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    redis.call('HSET', KEYS[2], id, meta)
    restored = restored + 1
  end
  redis.call('SADD', KEYS[4], id)
end
if ARGV[6] == '1' then
  if redis.call('EXISTS', KEYS[5]) == 0 then
    for _, o in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], ARGV[4], '+inf')) do
      redis.call('SADD', KEYS[5], o)
    end
    redis.call('SADD', KEYS[5], ARGV[3])
    redis.call('PEXPIRE', KEYS[5], ARGV[5])
  else
    redis.call('SADD', KEYS[5], ARGV[3])
  end
end
return restored
"""

# KEYS: fence;  ARGV: origin
# Phase two: this replica pushed everything it spent while Redis was unreachable (REJOIN) and
# has spent nothing since: it leaves the fence. The last one to leave lifts it (an empty set is
# deleted); a replica that never acknowledges (killed during the outage) holds it until it
# expires (FENCE_MS). Returns how many replicas are still to acknowledge.
FENCE_ACK = """
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('SCARD', KEYS[1])
"""
