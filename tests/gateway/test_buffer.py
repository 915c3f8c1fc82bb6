from datetime import UTC, datetime, timedelta

from gateway.buffer import DiskBuffer
from lingtan.kernel.reading import Quality, Reading

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def readings(n: int, start: int = 0) -> list[Reading]:
    return [Reading(T0 + timedelta(seconds=start + i), "m1", "active_power", float(start + i))
            for i in range(n)]


def test_readings_survive_reopening_until_acked(tmp_path):
    path = tmp_path / "buffer.db"
    buf = DiskBuffer(path)
    buf.append(readings(10))
    last_id, got = buf.peek(4)
    assert [r.value for r in got] == [0.0, 1.0, 2.0, 3.0]
    buf.close()  # as if the gateway died before the sink committed

    buf = DiskBuffer(path)
    assert buf.pending() == 10
    buf.ack(last_id)
    _, rest = buf.peek(100)
    assert [r.value for r in rest] == [float(i) for i in range(4, 10)]
    assert rest[0].time == T0 + timedelta(seconds=4)
    assert rest[0].time.tzinfo is not None
    buf.close()


def test_quality_and_microseconds_round_trip(tmp_path):
    buf = DiskBuffer(tmp_path / "b.db")
    t = T0 + timedelta(microseconds=123456)
    buf.append([Reading(t, "m", "state", 2.0, Quality.STALE | Quality.SPIKE)])
    _, [r] = buf.peek(1)
    assert r.time == t and r.quality == Quality.STALE | Quality.SPIKE


def test_full_buffer_drops_oldest_and_counts_them(tmp_path):
    buf = DiskBuffer(tmp_path / "small.db", max_bytes=200_000)
    for batch in range(40):
        buf.append(readings(200, start=batch * 200))
    dropped = buf.counter("dropped")
    assert dropped > 0
    _, kept = buf.peek(10**6)
    assert len(kept) + dropped == 40 * 200
    # the newest readings are the ones kept
    assert kept[-1].value == 40 * 200 - 1
    assert kept[0].value == dropped


def test_drop_newest_policy_keeps_the_oldest_and_counts_the_rest(tmp_path):
    buf = DiskBuffer(tmp_path / "small.db", max_bytes=200_000, when_full="drop_newest")
    for batch in range(40):
        buf.append(readings(200, start=batch * 200))
    dropped = buf.counter("dropped")
    assert dropped > 0 and dropped % 200 == 0  # whole incoming batches are refused
    _, kept = buf.peek(10**6)
    assert len(kept) + dropped == 40 * 200
    assert [r.value for r in kept] == [float(i) for i in range(len(kept))]  # the oldest, in order


def test_unknown_policy_is_refused(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="drop_oldest or drop_newest"):
        DiskBuffer(tmp_path / "b.db", when_full="drop_random")
