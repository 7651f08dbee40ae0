"""Moving due delayed jobs on Redis Cluster, where resque-scheduler's keys sit on different shards.

On one server a single script moves an item from ``delayed:<ts>`` to its queue. On a
cluster each step touches one shard: a scheduler first takes items into its own moving
list in the slot of ``delayed:<ts>`` (atomic: racing schedulers never take the same
item), then pushes them to their queues, then drops its moving list. A scheduler that
dies in between leaves its list behind; after ``stale_after`` seconds another one adopts
and delivers it. So each item is delivered at least once, and twice only after a crash.
"""

from __future__ import annotations

import json
from typing import Any

from bus.keys import Keys
from bus.pipeline.envelope import dumps
from bus.safejson import read_json
from bus.stores.delayed import drop_empty_timestamp

STALE_AFTER = 60

# KEYS: delayed:<ts>, movers hash, this scheduler's moving list (all in the slot of delayed:<ts>).
# ARGV: scheduler id, now, how many, stale after, moving-list key prefix.
_TAKE = """
local movers = redis.call('HGETALL', KEYS[2])
for i = 1, #movers, 2 do
  if movers[i] ~= ARGV[1] and tonumber(ARGV[2]) - tonumber(movers[i + 1]) > tonumber(ARGV[4]) then
    local theirs = ARGV[5] .. movers[i]
    while redis.call('LMOVE', theirs, KEYS[3], 'LEFT', 'RIGHT') do end
    redis.call('HDEL', KEYS[2], movers[i])
  end
end
for i = 1, tonumber(ARGV[3]) do
  if not redis.call('LMOVE', KEYS[1], KEYS[3], 'LEFT', 'RIGHT') then break end
end
local items = redis.call('LRANGE', KEYS[3], 0, -1)
if #items > 0 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return items
"""


def job_for_queue(item: bytes) -> tuple[str, str] | None:
    """(queue, job without its ``queue`` field) as resque-scheduler enqueues it; None if not a job."""
    try:
        job: Any = read_json(item)
    except ValueError:
        return None
    if not isinstance(job, dict) or not isinstance(job.get("class"), str):
        return None
    queue = job.get("queue")
    if not isinstance(queue, str) or not queue:
        return None
    text = item.decode()
    suffix = ',"queue":' + json.dumps(queue) + "}"
    if text.endswith(suffix):
        return queue, text[: -len(suffix)] + "}"
    return queue, dumps({k: v for k, v in job.items() if k != "queue"})


def move_due_across_slots(
    redis: Any, keys: Keys, *, now: int, scheduler_id: str, batch: int, failure: Any
) -> tuple[int, int, int]:
    """One batch of the earliest due timestamp: (moved, not jobs, ts); (0, 0, 0) if nothing is due."""
    due = redis.zrangebyscore(keys.delayed_queue_schedule, "-inf", now, start=0, num=1)
    if not due:
        return 0, 0, 0
    ts = int(due[0])
    mine = keys.delayed_moving(ts, scheduler_id)
    items = redis.eval(
        _TAKE,
        3,
        keys.delayed(ts),
        keys.delayed_movers(ts),
        mine,
        scheduler_id,
        now,
        batch,
        STALE_AFTER,
        keys.delayed_moving(ts, ""),
    )
    moved = bad = 0
    pipe = redis.pipeline(transaction=False)
    for item in items:
        target = job_for_queue(item)
        if target is None:
            pipe.rpush(keys.failed, failure(item))
            pipe.incr(keys.stat_failed)
            bad += 1
        else:
            pipe.sadd(keys.queues, target[0])
            pipe.rpush(keys.queue(target[0]), target[1])
            moved += 1
        pipe.srem(keys.timestamps(item.decode("utf-8", "replace")), f"delayed:{ts}")
    if len(pipe):
        pipe.execute()
    done = redis.pipeline(transaction=True)
    done.delete(mine)
    done.hdel(keys.delayed_movers(ts), scheduler_id)
    done.execute()
    drop_empty_timestamp(redis, keys, ts)
    return moved, bad, ts
