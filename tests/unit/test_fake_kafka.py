"""The in-memory Kafka keeps the promises test_protocol relies on: if one of these broke,
the protocol tests could pass against a Kafka that is not Kafka."""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_INVALID, KafkaException, TopicPartition

from tests.unit.fake_kafka import FakeKafka, ProcessKilled


@pytest.fixture
def kafka() -> FakeKafka:
    k = FakeKafka()
    k.create_topic("t", 1)
    return k


def values(kafka: FakeKafka, *, read_committed: bool = True) -> list[bytes | None]:
    return [v for _k, v, _p, _o in kafka.records("t", read_committed=read_committed)]


def consumed(kafka: FakeKafka) -> list[bytes | None]:
    consumer = kafka.process().consumer("g")
    consumer.assign([TopicPartition("t", 0, 0)])
    return [m.value() for m in consumer.consume(100)]


def test_read_committed_stops_at_an_open_transaction(kafka: FakeKafka) -> None:
    txn = kafka.process().producer("tx")
    txn.init_transactions()
    plain = kafka.process().producer()
    plain.produce("t", b"before")
    txn.begin_transaction()
    txn.produce("t", b"open")
    plain.produce("t", b"after")  # behind the open transaction: not readable yet
    assert values(kafka) == consumed(kafka) == [b"before"]
    assert values(kafka, read_committed=False) == [b"before", b"open", b"after"]
    txn.commit_transaction()
    assert values(kafka) == consumed(kafka) == [b"before", b"open", b"after"]


def test_aborted_records_are_skipped_and_markers_take_offsets(kafka: FakeKafka) -> None:
    p = kafka.process().producer("tx")
    p.init_transactions()
    for value, commit in ((b"a", False), (b"b", True)):
        p.begin_transaction()
        p.produce("t", value)
        p.commit_transaction() if commit else p.abort_transaction()
    assert values(kafka) == consumed(kafka) == [b"b"]
    assert [o for *_kv, _p, o in kafka.records("t")] == [2]  # a, its abort marker, b
    assert kafka.end_offsets("t") == {0: 4}


def test_init_transactions_fences_the_previous_producer_and_aborts_its_work(
    kafka: FakeKafka,
) -> None:
    old = kafka.process().producer("tx")
    old.init_transactions()
    old.begin_transaction()
    old.produce("t", b"zombie")
    new = kafka.process().producer("tx")
    new.init_transactions()
    assert kafka.open_transactions() == []
    for call in (old.commit_transaction, lambda: old.produce("t", b"more")):
        with pytest.raises(KafkaException) as e:
            call()
        assert e.value.args[0].fatal()
    assert values(kafka) == []


def test_offsets_sent_to_a_transaction_commit_with_it(kafka: FakeKafka) -> None:
    consumer = kafka.process().consumer("g")
    p = kafka.process().producer("tx")
    p.init_transactions()
    tp = [TopicPartition("t", 0, 7)]
    for commit in (False, True):
        p.begin_transaction()
        p.send_offsets_to_transaction(tp, consumer.consumer_group_metadata())
        assert consumer.committed([TopicPartition("t", 0)])[0].offset == OFFSET_INVALID
        p.commit_transaction() if commit else p.abort_transaction()
    assert consumer.committed([TopicPartition("t", 0)])[0].offset == 7


def test_a_killed_process_reaches_kafka_no_more(kafka: FakeKafka) -> None:
    process = kafka.process()
    p = process.producer("tx")
    p.init_transactions()
    p.begin_transaction()
    p.produce("t", b"x")
    process.kill()
    with pytest.raises(ProcessKilled):
        p.commit_transaction()
    assert kafka.open_transactions() == ["tx"]  # until a new incarnation fences it
    kafka.process().producer("tx").init_transactions()
    assert kafka.open_transactions() == []
    assert values(kafka) == []


def test_paused_partitions_give_nothing_until_resumed(kafka: FakeKafka) -> None:
    kafka.process().producer().produce("t", b"x")
    consumer = kafka.process().consumer("g")
    consumer.assign([TopicPartition("t", 0, 0)])
    consumer.pause([TopicPartition("t", 0)])
    assert consumer.consume(10) == []
    consumer.resume([TopicPartition("t", 0)])
    assert [m.value() for m in consumer.consume(10)] == [b"x"]
    consumer.seek(TopicPartition("t", 0, 0))
    assert [m.offset() for m in consumer.consume(10)] == [0]
