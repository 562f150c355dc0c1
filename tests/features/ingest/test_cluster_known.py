"""The foreign-key check on a cluster answers from the CRM partitions' bucket files exactly
what the in-process check answers from every clean id, and a partition keyed by customer reads
its own bucket only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.ingest.cluster.known import BucketedCustomers, known_dir, write_known
from features.ingest.cluster.parts import in_partition
from features.ingest.known import CustomerSet

COUNT = 4


def write_buckets(clean_dir, ids: pd.Series) -> None:
    """What the CRM's partitions write: each its own bucket's clean ids."""
    for i in range(COUNT):
        write_known(clean_dir, i, COUNT, ids[in_partition(ids, i, COUNT)])


def test_the_buckets_answer_as_every_clean_id_does(tmp_path):
    rng = np.random.default_rng(3)
    ids = pd.Series([f"C{n:06d}" for n in rng.choice(10**6, 2_000, replace=False)])
    write_buckets(tmp_path, ids)
    probes = pd.Series([*ids.sample(700, random_state=1), *(f"X{n}" for n in range(300)),
                        None, "", " C000001", ids.iloc[0].lower()], dtype=object)
    got = BucketedCustomers(tmp_path, COUNT).contains(probes)
    np.testing.assert_array_equal(got, CustomerSet(ids).contains(probes))
    assert got.sum() == 700


def test_integer_ids_are_found_by_their_text(tmp_path):
    """An export with numeric ids: the CRM's clean ids are text, a table's ids are numbers."""
    write_buckets(tmp_path, pd.Series([str(n) for n in range(100, 200)]))
    probes = pd.Series([150, 199, 200, 99], dtype="int64")
    assert BucketedCustomers(tmp_path, COUNT).contains(probes).tolist() == [True, True,
                                                                              False, False]


@pytest.mark.parametrize("own", [None, 2])
def test_a_partition_keyed_by_customer_reads_its_bucket_only(tmp_path, own):
    """Its rows hash to its own bucket; told so (``own``), it does not hash them again."""
    ids = pd.Series([f"C{n}" for n in range(400)])
    write_buckets(tmp_path, ids)
    mine = ids[in_partition(ids, 2, COUNT)]
    unknown = next(c for c in (f"X{n}" for n in range(100))
                   if in_partition(pd.Series([c]), 2, COUNT)[0])
    probes = pd.concat([mine, pd.Series([unknown, None])], ignore_index=True)
    for i in (0, 1, 3):
        (known_dir(tmp_path) / f"{i:05d}.arrow").unlink()
    got = BucketedCustomers(tmp_path, COUNT, own).contains(probes)
    assert got[:len(mine)].all() and not got[len(mine):].any()
    with pytest.raises(FileNotFoundError):
        BucketedCustomers(tmp_path, COUNT).contains(ids)


def test_an_id_of_another_bucket_is_refused(tmp_path):
    ids = pd.Series([f"C{n}" for n in range(50)])
    other = ids[~in_partition(ids, 0, COUNT)]
    with pytest.raises(RuntimeError, match="crm_customers partition 0: clean customer id"):
        write_known(tmp_path, 0, COUNT, other)
