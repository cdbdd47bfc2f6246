from coordinator.alignment import FINAL, BarrierAligner


def test_partition_is_held_after_all_readers_pass_and_cut_is_the_smallest():
    a = BarrierAligner(["r0", "r1"])
    a.assign(0)
    a.assign(1)
    a.on_barrier(0, "r0", 1, False)
    assert not a.is_held(0), "r1 has not passed checkpoint 1 on partition 0"
    a.on_barrier(0, "r1", 1, False)
    assert a.is_held(0)
    assert a.ready() is None, "partition 1 has not passed yet"
    a.on_barrier(1, "r1", 1, False)
    a.on_barrier(1, "r0", 1, False)
    assert a.ready() == 1
    a.committed(1)
    assert not a.is_held(0) and not a.is_held(1)
    assert a.ready() is None


def test_final_barrier_passes_every_checkpoint():
    a = BarrierAligner(["r0", "r1"])
    a.assign(0)
    a.on_barrier(0, "r0", 3, True)
    a.on_barrier(0, "r1", 2, False)
    assert a.ready() == 2
    a.committed(2)
    assert not a.all_final()
    a.on_barrier(0, "r1", 3, True)
    assert a.ready() == FINAL
    assert a.all_final()
    assert a.final_partitions() == [0]


def test_resume_knows_readers_that_finished_before_the_committed_offset():
    a = BarrierAligner(["r0", "r1"])
    a.assign(0, finished_readers=["r0"])
    a.on_barrier(0, "r1", 7, False)
    assert a.ready() == 7


def test_no_partitions_means_nothing_to_commit():
    a = BarrierAligner(["r0"])
    assert a.ready() is None
    assert not a.all_final()
