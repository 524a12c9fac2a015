"""Reading a bundle's shards ahead on threads (pipelines.io.read_ahead): order, memory bound, errors."""

import threading
import time

import pytest

from pipelines.io.read_ahead import ReadAhead


def test_results_come_in_shard_order_with_at_most_threads_held_back():
    running, most = [0], [0]
    lock = threading.Lock()

    def read(shard):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002 * (3 - shard % 3))  # later shards often finish first
        with lock:
            running[0] -= 1
        return shard * 10

    ahead, out = ReadAhead(read, 2), []
    for shard in range(12):
        out += ahead.add(shard)
        assert shard + 1 - len(out) <= 2  # never more than `threads` shards waiting for the caller
    out += ahead.drain()
    ahead.close()
    assert out == [s * 10 for s in range(12)]
    assert most[0] == 2  # two shards were read at once, never more


def test_one_thread_reads_each_shard_when_it_is_given():
    seen = []
    ahead = ReadAhead(lambda s: seen.append(s) or s, 1)
    assert list(ahead.add("a")) == ["a"] and seen == ["a"]
    assert list(ahead.drain()) == []


def test_an_error_reaches_the_caller_and_close_stops_the_rest():
    def read(shard):
        if shard == 1:
            raise OSError(f"cannot read shard {shard}")
        return shard

    ahead = ReadAhead(read, 2)
    with pytest.raises(OSError, match="cannot read shard 1"):
        for shard in range(6):
            list(ahead.add(shard))
    ahead.close()
    assert list(ahead.drain()) == []
