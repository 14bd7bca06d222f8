"""The term index beside the memory view: BM25 postings in Redis, over keyed hashes of terms.

Memory content is sealed, so no index of it can hold its words. Each normalised term
(domain/relevance.py) is indexed as a token, the first 16 hex digits of
HMAC-SHA256(term key, term), where the term key is derived from the first data key
(Sealer.term_key). Without that key a token cannot be turned back into its word, nor a word
into its token to look for it. Under the network's memory prefix:

    term:{type}:{token}   sorted set: the items of that type holding the term, each scored by
                          BM25's tf part (saturated count, normalised by the item's length);
                          members are the item ids' 16 raw bytes, for a smaller index
    doc:{id}              what the item put in the index: "{type} {length} {task in hex|-}
                          token:count ...", so that a re-put or a removal takes out exactly
                          that, and a query scores it exactly
    stats                 hash: items and length (summed) for the average item length, and
                          kid, the id of the term key the postings were written under

What the index reveals to someone who reads Redis but holds no data key: which items share a
term (and so roughly how alike they are), how often a term occurs in an item and in how many,
and each item's length in terms; equality patterns, never the words. Someone who can also
make Mesh store text of their choosing and watch the index could learn a word's token, and
then which items hold that word: as the sealed content, the index is only as safe as the
data keys and Redis's own access control.

An item, its type and task entries, its postings and the stats change in one Lua script, so a
reader sees an item with its postings or neither.

A posting's score orders the list only: BM25's tf part against a fixed pivot length
(relevance.PIVOT_LENGTH), so that it depends on the item alone, never on what was written
before it (a view rebuilt in any order holds the same index). A query reads a bounded share
of the postings, whatever the network holds: each term's `pool` best, then scores exactly
the candidates that do best on those pages, from their `doc` entries, with BM25 against the
network's average item length and each term's idf as they are now. An item that is no
term's best yet holds many of the terms could be missed; every item holding one of the
query's rarer terms (a list no longer than its page) is seen.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Collection, Mapping, Sequence
from uuid import UUID

import redis

from meshcore.domain import relevance
from meshcore.domain.memory import MemoryItem, MemoryType

_PUT = """
local prefix, id, member = ARGV[1], ARGV[2], ARGV[3]
local mtype, created, task, doc = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
redis.call('SET', prefix .. ':item:' .. id, ARGV[4])
redis.call('ZADD', prefix .. ':type:' .. mtype, created, id)
if task ~= '' then redis.call('ZADD', prefix .. ':task:' .. task, created, id) end
local dockey, stats = prefix .. ':doc:' .. id, prefix .. ':stats'
local old = redis.call('GET', dockey)
if old == doc then return 0 end
if old then
  local otype, olength = string.match(old, '^(%S+) (%d+)')
  for token in string.gmatch(old, '(%x+):%d+') do
    redis.call('ZREM', prefix .. ':term:' .. otype .. ':' .. token, member)
  end
  redis.call('HINCRBY', stats, 'items', -1)
  redis.call('HINCRBY', stats, 'length', -tonumber(olength))
end
local length = tonumber(string.match(doc, '^%S+ (%d+)'))
redis.call('HINCRBY', stats, 'items', 1)
redis.call('HINCRBY', stats, 'length', length)
redis.call('HSET', stats, 'kid', ARGV[9])
local k1, b, pivot = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local norm = 1 - b + b * length / pivot
for token, count in string.gmatch(doc, '(%x+):(%d+)') do
  local tf = tonumber(count)
  local weight = tf * (k1 + 1) / (tf + k1 * norm)
  redis.call('ZADD', prefix .. ':term:' .. mtype .. ':' .. token, weight, member)
end
redis.call('SET', dockey, doc)
return 1
"""

_FORGET = """
local prefix, id, member = ARGV[1], ARGV[2], ARGV[3]
local dockey = prefix .. ':doc:' .. id
local doc = redis.call('GET', dockey)
redis.call('DEL', prefix .. ':item:' .. id)
if not doc then
  for i = 4, #ARGV do redis.call('ZREM', prefix .. ':type:' .. ARGV[i], id) end
  return 0
end
local mtype, length, task = string.match(doc, '^(%S+) (%d+) (%S+)')
for token in string.gmatch(doc, '(%x+):%d+') do
  redis.call('ZREM', prefix .. ':term:' .. mtype .. ':' .. token, member)
end
redis.call('ZREM', prefix .. ':type:' .. mtype, id)
if task ~= '-' then
  task = task:gsub('%x%x', function(h) return string.char(tonumber(h, 16)) end)
  redis.call('ZREM', prefix .. ':task:' .. task, id)
end
redis.call('HINCRBY', prefix .. ':stats', 'items', -1)
redis.call('HINCRBY', prefix .. ':stats', 'length', -tonumber(length))
redis.call('DEL', dockey)
return 1
"""

Postings = list[tuple[bytes, float]]
# How many candidates, per place in the pool, are scored exactly from the pages' best.
RESCORED = 2
TOKEN_CACHE = 65_536


class TermIndex:
    """Writes an item with its postings, removes both, and ranks items for a query."""

    def __init__(self, client: redis.Redis, term_key: bytes) -> None:
        self._redis = client
        self.kid = hmac.new(term_key, b"id", hashlib.sha256).hexdigest()[:8]
        self._keyed = hmac.new(term_key, digestmod=hashlib.sha256)
        # Words repeat (a few are in most items), and a view's rebuild hashes every word of
        # every item again: the tokens of the words seen last are kept.
        self.token = functools.lru_cache(maxsize=TOKEN_CACHE)(self._token)
        self._put = client.register_script(_PUT)
        self._forget = client.register_script(_FORGET)

    def _token(self, term: str) -> str:
        keyed = self._keyed.copy()
        keyed.update(term.encode())
        return keyed.hexdigest()[:16]

    def put(self, pipe: redis.client.Pipeline, prefix: str, item: MemoryItem, raw: str) -> None:
        """Queue the write of an item (its JSON, `raw`) and its postings on `pipe`."""
        counts, length = relevance.indexed_terms(item.content)
        postings = " ".join(f"{self.token(t)}:{n}" for t, n in counts.items())
        # The task in hex: a client's task_id may hold spaces or colons, which the format uses.
        task = item.task_id.encode().hex() if item.task_id else "-"
        doc = f"{item.type.value} {length} {task} {postings}"
        args = [
            prefix, str(item.id), item.id.bytes, raw, item.type.value,
            item.created_at.timestamp(), item.task_id or "", doc, self.kid,
            relevance.K1, relevance.B, relevance.PIVOT_LENGTH,
        ]  # fmt: skip
        self._put(args=args, client=pipe)

    def forget(self, prefix: str, item_ids: Sequence[UUID]) -> None:
        """Remove items with their postings and index entries."""
        pipe = self._redis.pipeline(transaction=False)
        for item_id in item_ids:
            args = [prefix, str(item_id), item_id.bytes, *(t.value for t in MemoryType)]
            self._forget(args=args, client=pipe)
        pipe.execute()

    def is_current(self, prefix: str) -> bool:
        """Whether the network's postings were last written under this term key."""
        kid = self._redis.hget(f"{prefix}:stats", "kid")
        return kid is None or kid.decode() == self.kid

    def rank(
        self,
        prefix: str,
        terms: Mapping[str, float],
        types: Collection[MemoryType],
        pool: int,
    ) -> list[tuple[UUID, float]]:
        """The `pool` items of these types that score best for the weighted terms, with
        their BM25 scores, best first; items holding none of the terms are not among them."""
        tokens = {self.token(t): w for t, w in terms.items()}
        kinds = [t.value for t in types]
        lists = [(kind, token) for kind in kinds for token in tokens]
        if not lists:
            return []
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(f"{prefix}:stats", "items", "length")
        for kind in kinds:
            pipe.zcard(f"{prefix}:type:{kind}")
        for kind, token in lists:
            pipe.zcard(f"{prefix}:term:{kind}:{token}")
        (held, length), *counts = pipe.execute()
        average = int(length or 0) / max(int(held or 0), 1)
        items = dict(zip(kinds, counts[: len(kinds)], strict=True))
        sizes = dict(zip(lists, counts[len(kinds) :], strict=True))
        # Each list's weight in the sum: the term's weight in the query times its idf among
        # the items of the types asked for. The rarest terms tell most; a long query reads
        # the pages of its best.
        total = sum(items.values())
        holding = {t: sum(sizes[(kind, t)] for kind in kinds) for t in tokens}
        weights = {
            (kind, token): tokens[token] * relevance.idf(max(total, holding[token]), holding[token])
            for (kind, token), n in sizes.items()
            if n
        }
        read = sorted(weights, key=weights.__getitem__, reverse=True)[: relevance.MAX_QUERY_TERMS]
        if not read:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for kind, token in read:
            pipe.zrevrange(f"{prefix}:term:{kind}:{token}", 0, pool - 1, withscores=True)
        pages: list[Postings] = pipe.execute()
        seen: dict[bytes, float] = {}
        for key, page in zip(read, pages, strict=True):
            for member, weight in page:
                seen[member] = seen.get(member, 0.0) + weights[key] * weight
        candidates = sorted(seen, key=seen.__getitem__, reverse=True)[: RESCORED * pool]
        if not candidates:
            return []  # the lists were emptied meanwhile
        docs = self._redis.mget([f"{prefix}:doc:{UUID(bytes=m)}" for m in candidates])
        exact = {
            member: _bm25(doc.decode(), weights, average)
            for member, doc in zip(candidates, docs, strict=True)
            if doc is not None
        }
        best = sorted(exact, key=exact.__getitem__, reverse=True)[:pool]
        return [(UUID(bytes=member), exact[member]) for member in best]


def _bm25(doc: str, weights: Mapping[tuple[str, str], float], average: float) -> float:
    """An item's BM25 score from its `doc` entry: each query term it holds, by its count."""
    kind, length, _ = doc.split(" ", 2)
    score = 0.0
    for (of_kind, token), weight in weights.items():
        if of_kind != kind:
            continue
        at = doc.find(f" {token}:")
        if at < 0:
            continue
        start = at + len(token) + 2
        end = doc.find(" ", start)
        count = int(doc[start:] if end < 0 else doc[start:end])
        score += weight * relevance.tf_weight(count, int(length), average)
    return score
