"""The exactly-once protocol, crash point by crash point, without a broker or a database.

The real ReaderTask and WriterTask run against an in-memory Kafka (``fake_kafka``) and an
in-memory XA sink (``memory_sink``): two reader tasks copy a generated table to the data
topic, one writer task applies it to the sink in two-phase commits. A task is killed at a
crash point of its commit (``coordinator.faults`` names them; here the hook kills the task's
fake process instead of the real one), a new incarnation starts on the same Kafka and sink,
and each test asserts the recovery decision (which prepared sink transaction was committed
or rolled back, and by whom) and what a user sees: every source row in the sink exactly
once, listed by event id when it is not — which are missing, which are extra, which twice.
"""

from __future__ import annotations

import functools
import gc
import importlib.metadata
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaException

from coordinator import plugins, reader_task
from coordinator.checkpoint import CheckpointCoordinator
from coordinator.connectors import build_source
from coordinator.control import acks_in
from coordinator.errors import TransientError
from coordinator.faults import NO_FAULTS, Faults
from coordinator.job import build_job
from coordinator.kafka_io import OFFSETS_TOPIC, STATUS_TOPIC
from coordinator.plan import JobPlan
from coordinator.positions import positions_in
from coordinator.reader_task import ReaderTask
from coordinator.reporting import TaskCounters
from coordinator.writer_task import WriterTask
from schemas.control import CheckpointTrigger, WriterAck
from schemas.events import Barrier, RowEvent
from schemas.serde import EventSerde
from tests.unit.fake_kafka import FakeKafka, FakeProcess, ProcessKilled
from tests.unit.memory_sink import DATABASES, MemoryDatabase

ROWS = 2500
"""Rows per reader task: three source batches (the stream source reads 1000 at a time)."""
READERS = 2
PARTITIONS = 2
WRITER = "writer-0"


# -- the fixtures: the memorywriter plugin, GC left as found, one transaction per batch ------
@functools.cache
def _registry_with_memorywriter() -> plugins.Registry:
    test_plugin = importlib.metadata.EntryPoint(
        "memorywriter", "tests.unit.memory_sink:MEMORYWRITER", plugins.GROUP
    )
    return plugins.discover([*importlib.metadata.entry_points(group=plugins.GROUP), test_plugin])


@pytest.fixture(autouse=True)
def _memorywriter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "registry", _registry_with_memorywriter)


@pytest.fixture(autouse=True)
def _gc_as_found() -> Iterator[None]:
    """The tasks tune the collector for a task process (gc_tuning); this is pytest's."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.fixture(autouse=True)
def _commit_every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader commits every batch (it otherwise commits every 0.25 s), so which rows a
    crash leaves uncommitted does not depend on the clock."""
    monkeypatch.setattr(reader_task, "COMMIT_EVERY_S", 0.0)


# -- crash points ---------------------------------------------------------------------------
class KillAt(Faults):
    """SIGKILL of the task at the ``n``-th ``point``, as SLUICE_FAULTS does, but of the task's
    fake process: its Kafka clients and sink connections die, and no code of it runs on
    (every later call of them raises :class:`ProcessKilled`, a BaseException)."""

    def __init__(self, point: str, n: int, process: FakeProcess, db: MemoryDatabase) -> None:
        super().__init__({point: n})
        self.point, self.process, self.db = point, process, db
        self.fired = False

    def hit(self, point: str) -> None:
        if self.due(point):
            self._kill()

    def due(self, point: str) -> bool:
        due = super().due(point)
        self.fired = self.fired or due
        return due

    def _kill(self) -> None:
        self.process.kill()
        self.db.kill_connections()
        raise ProcessKilled(f"killed at {self.point}")


class PauseAt(Faults):
    """Freeze the task at the ``n``-th ``point`` until released: a zombie that a new
    incarnation fences while it sleeps (a long GC pause, a stopped VM)."""

    def __init__(self, point: str, n: int) -> None:
        super().__init__({point: n})
        self.reached = threading.Event()
        self.release = threading.Event()

    def hit(self, point: str) -> None:
        if self.due(point):
            self.reached.set()
            assert self.release.wait(10), "the zombie was never released"

    def run_until_paused(self, task: Any) -> None:
        """Run ``task`` in a thread until it freezes here."""
        self._outcome: list[BaseException] = []

        def run() -> None:
            try:
                task.run()
            except BaseException as e:  # noqa: BLE001 - wake_up returns it
                self._outcome.append(e)

        self._thread = threading.Thread(target=run)
        self._thread.start()
        assert self.reached.wait(10)

    def wake_up(self) -> BaseException:
        """Let the frozen task go on; what it ended with (a zombie must fail)."""
        self.release.set()
        self._thread.join(10)
        (error,) = self._outcome
        return error


# -- one job run on the fakes ----------------------------------------------------------------
@dataclass
class Reporter:
    """The task reporter; after every reader commit it triggers the next checkpoint, as the
    coordinator would once the previous one is done, so the data topic carries barriers."""

    trigger: Callable[[int], None]
    auto_trigger: bool = True
    triggered: int = 0
    done: set[str] = field(default_factory=set)

    def progress(self, task: str, counters: TaskCounters, force: bool = False) -> None:
        if (
            self.auto_trigger
            and force
            and task.startswith("reader")
            and counters.checkpoint >= self.triggered
        ):
            self.triggered += 1
            self.trigger(self.triggered)

    def failed(self, task: str, message: str, retriable: bool) -> None:
        raise AssertionError(f"{task} reported a failure: {message}")

    def finished(self, task: str, counters: TaskCounters) -> None:
        self.done.add(task)


class Until:
    """The tasks' stop event: set once ``condition`` holds. A task loop asks it every turn,
    and the fake Kafka never waits, so a run that should have ended fails in a bounded
    number of turns instead of spinning forever."""

    def __init__(self, condition: Callable[[], bool], turns: int = 20_000) -> None:
        self.condition = condition
        self.turns = turns

    def is_set(self) -> bool:
        self.turns -= 1
        if self.turns < 0:
            raise AssertionError("the task did not finish")
        return self.condition()


class JobRun:
    def __init__(self, name: str) -> None:
        self.kafka = FakeKafka()
        self.db = DATABASES[name] = MemoryDatabase()
        self.job = build_job(
            {
                "job": {
                    "content": [
                        {
                            "reader": {
                                "name": "streamreader",
                                "parameter": {
                                    "column": [
                                        {"name": "id", "type": "id"},
                                        {"name": "n", "type": "int"},
                                    ],
                                    "sliceRecordCount": ROWS,
                                    "seed": 7,
                                },
                            },
                            "writer": {"name": "memorywriter", "parameter": {"database": name}},
                        }
                    ],
                    "setting": {
                        "speed": {"readerChannel": READERS, "writerChannel": 1},
                        "kafka": {"partitions": PARTITIONS},
                    },
                }
            },
            default_name=name,
        )
        self.source = build_source(self.job)
        s = self.job.setting
        self.plan = JobPlan(
            job_name=self.job.name,
            run_id="r1",
            bootstrap="fake-kafka:9092",
            schema_registry_url=None,
            topic_prefix=s.kafka.topic_prefix,
            partitions=PARTITIONS,
            replication_factor=1,
            reader_parts=tuple(self.source.list_parts()),
            writer_count=1,
            exactly_once=True,
            checkpoint_interval_s=3600.0,  # the tests trigger checkpoints themselves
            max_rows_per_checkpoint=None,
            job=self.job,
        )
        for spec in self.plan.topics():
            self.kafka.create_topic(spec.name, spec.partitions)
        self.kafka.create_topic(OFFSETS_TOPIC, 1)
        self.kafka.create_topic(STATUS_TOPIC, 1)
        self.serde = EventSerde(self.kafka.registry)
        coordinator = self.kafka.process().producer()
        self.reporter = Reporter(
            lambda k: coordinator.produce(
                self.plan.control_topic,
                self.serde.encode(CheckpointTrigger(self.plan.job_name, k, 0)),
                partition=0,
            )
        )

    # -- tasks ------------------------------------------------------------------------------
    def reader(
        self, index: int, faults: Faults = NO_FAULTS, process: FakeProcess | None = None
    ) -> ReaderTask:
        return ReaderTask(
            self.plan, index, self.reporter, None, faults, kafka=process or self.kafka.process()
        )

    def read(self, index: int) -> None:
        self.reader(index).run()
        assert f"reader-{index}" in self.reporter.done

    def read_all(self) -> None:
        for i in range(READERS):
            self.read(i)

    def writer(self, faults: Faults = NO_FAULTS, process: FakeProcess | None = None) -> WriterTask:
        return WriterTask(
            self.plan,
            0,
            self.reporter,
            Until(lambda: WRITER in self.reporter.done),
            faults,
            kafka=process or self.kafka.process(),
        )

    def crash_writer(self, point: str, n: int) -> None:
        """A writer incarnation killed at the ``n``-th ``point``."""
        process = self.kafka.process()
        faults = KillAt(point, n, process, self.db)
        with pytest.raises(ProcessKilled):
            self.writer(faults, process).run()
        assert faults.fired

    def write(self) -> WriterTask:
        self.reporter.done.discard(WRITER)
        task = self.writer()
        task.run()
        assert WRITER in self.reporter.done
        return task

    # -- what Kafka holds -------------------------------------------------------------------
    def acks(self, *, read_committed: bool = True) -> list[WriterAck]:
        records = self.kafka.records(self.plan.control_topic, read_committed=read_committed)
        return [a for a in acks_in(records, self.serde) if a.task == WRITER]

    def data(self, *, read_committed: bool = True) -> list[RowEvent | Barrier]:
        records = self.kafka.records(self.plan.data_topic, read_committed=read_committed)
        decoded = [self.serde.decode(v) for _k, v, _p, _o in records if v is not None]
        return [e for e in decoded if isinstance(e, RowEvent | Barrier)]

    def position(self, index: int) -> dict[str, str]:
        saved = positions_in(self.kafka.records(OFFSETS_TOPIC), self.plan.offsets_key(""))
        return saved[f"reader-{index}"].position if f"reader-{index}" in saved else {}

    def group_offsets(self) -> dict[int, int]:
        group, topic = self.plan.writer_group, self.plan.data_topic
        return {
            p: o for (g, t, p), o in self.kafka.group_offsets.items() if (g, t) == (group, topic)
        }

    # -- what the user expects ----------------------------------------------------------------
    def source_rows(self) -> dict[object, tuple[object, ...]]:
        """id → row, every row the source generates, read straight from it (the same for
        every test: generated once)."""
        if not _SOURCE_ROWS:
            for i, part in enumerate(self.plan.reader_parts):
                reader = self.source.build_part(part, f"reader-{i}", None)
                while (batch := reader.next_batch()) is not None:
                    for e in batch:
                        assert e.after is not None
                        _SOURCE_ROWS[e.after[0]] = e.after
        assert len(_SOURCE_ROWS) == READERS * ROWS
        return _SOURCE_ROWS

    def assert_exactly_once(self) -> None:
        """The sink holds every source row once, with its values; nothing is left in doubt;
        the writer's offsets are past every record; every sink commit has its Kafka ack and no
        rolled-back transaction has one."""
        expected = {f"reader-{i}:{seq}" for i in range(READERS) for seq in range(1, ROWS + 1)}
        applied = Counter(self.db.applied)
        assert {
            "missing": sorted(expected - set(applied))[:20],
            "extra": sorted(set(applied) - expected)[:20],
            "twice": sorted(e for e, n in applied.items() if n > 1)[:20],
        } == {"missing": [], "extra": [], "twice": []}
        assert self.db.rows == self.source_rows()
        assert self.db.prepared == {}
        assert self.kafka.open_transactions() == []
        ends: dict[int, int] = {}
        for _k, _v, p, o in self.kafka.records(self.plan.data_topic):
            ends[p] = max(ends.get(p, 0), o + 1)
        assert self.group_offsets() == ends
        acked = {a.txn for a in self.acks()}
        committed = set(self.db.xids("commit") + self.db.xids("recover-commit"))
        rolled_back = set(self.db.xids("rollback") + self.db.xids("recover-rollback"))
        assert committed <= acked
        assert set(self.db.xids("prepare")) & acked == committed
        assert rolled_back & acked == set()
        # Each sink transaction that was committed stored the offsets its ack names.
        assert self.db.offsets == {
            tp: o for a in self.acks() if a.txn in committed for tp, o in a.offsets.items()
        }


_SOURCE_ROWS: dict[object, tuple[object, ...]] = {}


@pytest.fixture
def run(request: pytest.FixtureRequest) -> Iterator[JobRun]:
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:60]
    yield JobRun(name)
    DATABASES.pop(name, None)


# -- the happy path first: what the crash tests compare against -------------------------------
def test_a_run_without_crashes_applies_every_row_once(run: JobRun) -> None:
    run.read_all()
    run.write()
    run.assert_exactly_once()
    # Several two-phase commits, each prepared then committed by the writer itself.
    assert len(run.db.xids("prepare")) >= 3
    assert run.db.xids("commit") == run.db.xids("prepare")
    assert [w for w, _x in run.db.history if w.startswith("recover")] == []


# -- the writer's crash points ---------------------------------------------------------------
# Killed at its 2nd two-phase commit: the 1st is committed, so recovery must neither undo
# nor repeat it, and must settle the 2nd whichever way Kafka decided.


def _writer_crashed_at(run: JobRun, point: str, n: int = 2) -> tuple[str, ...]:
    run.read_all()
    run.crash_writer(point, n)
    return tuple(run.db.xids("prepare"))


def test_crash_before_pre_commit_leaves_nothing_to_recover(run: JobRun) -> None:
    # mid_write: rows applied inside the open sink transaction, nothing prepared. Its 3rd
    # occurrence lies after the first checkpoint committed (asserted, not assumed).
    prepared = _writer_crashed_at(run, "mid_write", 3)
    assert run.db.xids("commit") == list(prepared) and len(prepared) == 1
    assert run.db.prepared == {}
    applied_before = len(run.db.applied)
    run.write()
    assert [w for w, _x in run.db.history if w.startswith("recover")] == []
    assert len(run.db.applied) > applied_before
    run.assert_exactly_once()


def test_crash_after_prepare_rolls_the_sink_back(run: JobRun) -> None:
    # XA PREPARE done, the Kafka transaction not begun: undecided, so rolled back.
    first, second = _writer_crashed_at(run, "after_prepare")
    assert set(run.db.prepared) == {second}
    assert second not in {a.txn for a in run.acks(read_committed=False)}
    run.write()
    assert run.db.xids("recover-rollback") == [second]
    assert run.db.xids("recover-commit") == []
    assert first in run.db.xids("commit")
    run.assert_exactly_once()


def test_crash_inside_the_kafka_transaction_rolls_the_sink_back(run: JobRun) -> None:
    # Ack and offsets produced in the open Kafka transaction, not committed: the new
    # incarnation's init_transactions aborts it, so the ack never shows and the sink rolls
    # back.
    _first, second = _writer_crashed_at(run, "before_kafka_commit")
    assert run.kafka.open_transactions() == [run.plan.transactional_id(WRITER)]
    assert second in {a.txn for a in run.acks(read_committed=False)}  # written, ...
    assert second not in {a.txn for a in run.acks()}  # ... not visible
    offsets_at_crash = run.group_offsets()
    run.write()
    assert run.db.xids("recover-rollback") == [second]
    assert second not in {a.txn for a in run.acks()}
    assert offsets_at_crash != run.group_offsets()
    run.assert_exactly_once()


def test_crash_after_the_kafka_commit_commits_the_sink(run: JobRun) -> None:
    # Kafka decided (ack and offsets committed), XA COMMIT not done: recovery commits.
    _first, second = _writer_crashed_at(run, "after_kafka_commit")
    assert set(run.db.prepared) == {second}
    assert second in {a.txn for a in run.acks()}
    offsets_at_crash = run.group_offsets()
    run.write()
    assert run.db.xids("recover-commit") == [second]
    assert run.db.xids("recover-rollback") == []
    # The rows of that checkpoint came from the sink's prepared transaction, not from a
    # second read: the offsets had moved past them.
    ack = next(a for a in run.acks() if a.txn == second)
    assert {f"{run.plan.data_topic}:{p}": o for p, o in offsets_at_crash.items()} == ack.offsets
    run.assert_exactly_once()


def test_crash_after_the_sink_commit_leaves_nothing_to_recover(run: JobRun) -> None:
    prepared = _writer_crashed_at(run, "after_sink_commit")
    assert run.db.xids("commit") == list(prepared) and len(prepared) == 2
    assert run.db.prepared == {}
    run.write()
    assert [w for w, _x in run.db.history if w.startswith("recover")] == []
    run.assert_exactly_once()


def test_kafka_commit_unconfirmed_leaves_the_sink_prepared_for_recovery(run: JobRun) -> None:
    # Kafka committed, but the call timed out (a broker bounce): the task cannot know, so it
    # must leave the sink prepared and stop; the next incarnation finds the ack and commits.
    run.read_all()
    process = run.kafka.process()
    with pytest.raises(TransientError, match="unknown"):
        run.writer(Faults({"commit_unconfirmed": 2}), process).run()
    process.kill()  # the task process exits; the supervisor starts another
    _first, second = run.db.xids("prepare")
    assert set(run.db.prepared) == {second}
    assert second in {a.txn for a in run.acks()}
    run.write()
    assert run.db.xids("recover-commit") == [second]
    run.assert_exactly_once()


def test_kafka_refusing_the_commit_rolls_back_and_redoes_the_checkpoint(run: JobRun) -> None:
    # An abortable error (the broker refused the transaction): no decision was taken, so the
    # same incarnation rolls the sink back, rewinds to the committed offsets and goes on.
    from confluent_kafka import KafkaError

    run.read_all()
    commits = Counter[str]()

    def refuse_the_second(producer: object) -> None:
        commits["n"] += 1
        if commits["n"] == 2:
            error = KafkaError(KafkaError._STATE, "injected: abortable", txn_requires_abort=True)
            raise KafkaException(error)

    run.kafka.before_commit.append(refuse_the_second)
    run.write()
    assert commits["n"] > 2
    _first, second, *_rest = run.db.xids("prepare")
    assert run.db.xids("rollback") == [second]
    assert second not in {a.txn for a in run.acks()}
    run.assert_exactly_once()


def test_a_fenced_zombie_writer_cannot_decide(run: JobRun) -> None:
    # The writer freezes inside its Kafka transaction; a new incarnation fences it, rolls its
    # prepared transaction back and finishes the job. When the zombie wakes, its commit is
    # refused and nothing of it shows.
    run.read_all()
    pause = PauseAt("before_kafka_commit", 2)
    pause.run_until_paused(run.writer(pause))
    _first, second = run.db.xids("prepare")
    run.write()
    assert run.db.xids("recover-rollback") == [second]
    error = pause.wake_up()
    assert isinstance(error, TransientError)
    cause = error.__cause__
    assert isinstance(cause, KafkaException) and cause.args[0].fatal()
    assert second not in {a.txn for a in run.acks()}
    run.assert_exactly_once()


def test_the_coordinator_counts_a_checkpoint_once_its_kafka_side_committed(run: JobRun) -> None:
    # The real CheckpointCoordinator on the same Kafka: checkpoint 1 is complete when the
    # writer's ack commits in Kafka (not when the sink is prepared), and the rows it counts
    # (what numWrite reports) stay exact through the writer's crashes and recovery.
    run.reporter.auto_trigger = False
    coordinator = CheckpointCoordinator(run.plan, run.serde, run.kafka.process())
    assert coordinator.trigger_now() == 1
    run.read_all()
    run.crash_writer("after_prepare", 1)
    coordinator.poll(0)
    assert (coordinator.completed, coordinator.rows_committed) == (0, 0)
    run.crash_writer("after_kafka_commit", 1)
    coordinator.poll(0)
    assert coordinator.completed == 1 and not coordinator.all_final
    assert 0 < coordinator.rows_committed < READERS * ROWS
    run.write()
    coordinator.poll(0)
    assert coordinator.all_final
    assert coordinator.rows_committed == READERS * ROWS
    coordinator.close()
    run.assert_exactly_once()


# -- the reader's crash points ---------------------------------------------------------------
def _row_ids(events: list[RowEvent | Barrier]) -> list[str]:
    return [e.event_id for e in events if isinstance(e, RowEvent)]


def test_reader_crash_mid_transaction_leaves_nothing_visible(run: JobRun) -> None:
    process = run.kafka.process()
    faults = KillAt("mid_txn", 2, process, run.db)
    with pytest.raises(ProcessKilled):
        run.reader(0, faults, process).run()
    # The 2nd batch is in the log, in a transaction left open: read_committed sees only the
    # 1st, and the committed position is right after it.
    assert len(_row_ids(run.data(read_committed=False))) == 2000
    assert sorted(_row_ids(run.data())) == sorted(f"reader-0:{seq}" for seq in range(1, 1001))
    assert run.position(0) == {"next": "1000"}
    run.read(0)  # fences the dead one (aborting its transaction) and resumes after row 1000
    assert sorted(_row_ids(run.data())) == sorted(f"reader-0:{seq}" for seq in range(1, ROWS + 1))
    finals = [e for e in run.data() if isinstance(e, Barrier) and e.final]
    assert len(finals) == PARTITIONS
    run.read(1)
    run.write()
    run.assert_exactly_once()


def test_reader_crash_in_the_commit_call_leaves_rows_and_position_uncommitted(
    run: JobRun,
) -> None:
    # Killed inside commit_transaction, before the broker took it: the rows, barrier and
    # position of that transaction all stay uncommitted, and vanish when it is fenced.
    process = run.kafka.process()
    commits = Counter[str]()

    def kill_at_the_second(producer: object) -> None:
        commits["n"] += 1
        if commits["n"] == 2:
            process.kill()
            raise ProcessKilled("killed in commit_transaction")

    run.kafka.before_commit.append(kill_at_the_second)
    with pytest.raises(ProcessKilled):
        run.reader(0, NO_FAULTS, process).run()
    run.kafka.before_commit.clear()
    assert sorted(_row_ids(run.data())) == sorted(f"reader-0:{seq}" for seq in range(1, 1001))
    assert run.position(0) == {"next": "1000"}
    run.read(0)
    assert sorted(_row_ids(run.data())) == sorted(f"reader-0:{seq}" for seq in range(1, ROWS + 1))
    run.read(1)
    run.write()
    run.assert_exactly_once()


def test_reader_crash_after_commit_resumes_from_its_position(run: JobRun) -> None:
    process = run.kafka.process()
    with pytest.raises(ProcessKilled):
        run.reader(0, KillAt("after_commit", 2, process, run.db), process).run()
    assert run.position(0) == {"next": "2000"}
    assert len(_row_ids(run.data())) == 2000
    run.read(0)
    assert Counter(_row_ids(run.data())).most_common(1)[0][1] == 1
    assert len(_row_ids(run.data())) == ROWS
    run.read(1)
    run.write()
    run.assert_exactly_once()


def test_a_fenced_zombie_reader_cannot_publish(run: JobRun) -> None:
    pause = PauseAt("mid_txn", 2)
    pause.run_until_paused(run.reader(0, pause))
    run.read(0)
    error = pause.wake_up()
    assert isinstance(error, KafkaException) and error.args[0].fatal()
    assert len(_row_ids(run.data())) == ROWS
    run.read(1)
    run.write()
    run.assert_exactly_once()
