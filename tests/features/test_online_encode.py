"""The compact store's values blobs, encoded from Arrow, are the bytes of Feast's own
conversion packed into a ``RepeatedValue``."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa
import pytest
from feast import Field
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import RepeatedValue, Value
from feast.type_map import python_values_to_proto_values
from feast.types import Bool, Float64, Int64, String
from feast.value_type import ValueType
from hypothesis import given, settings
from hypothesis import strategies as st

from features.online_encode import entity_keys, epochs, values_blobs
from features.online_store import epoch

BIG = 2**63 - 1


def feasts(batch: pa.RecordBatch, fields: list[Field]) -> list[bytes]:
    """Feast's conversion of each column (as ``_convert_arrow_to_proto`` does), packed."""
    columns = [python_values_to_proto_values(batch.column(f.name).to_numpy(zero_copy_only=False),
                                             f.dtype.to_value_type()) for f in fields]
    return [RepeatedValue(val=list(row)).SerializeToString() for row in zip(*columns, strict=True)]


EDGES = pa.RecordBatch.from_pydict({
    "x": pa.array([1.5, math.nan, None, math.inf, -math.inf, -0.0, 0.0, 1e-300],
                  pa.float64()),
    "n": pa.array([0, -1, BIG, -BIG - 1, 127, 128, 300, -300], pa.int64()),
    "m": pa.array([None, 3, None, 0, -5, 2**40, None, 1], pa.int64()),
    "s": pa.array(["", "a", None, "é" * 200, "x" * 127, "x" * 128, "naïve ✓", None]),
})
FIELDS = [Field(name="x", dtype=Float64), Field(name="n", dtype=Int64),
          Field(name="m", dtype=Int64), Field(name="s", dtype=String)]


def test_edge_values_encode_as_feasts_conversion():
    assert values_blobs(EDGES, FIELDS) == feasts(EDGES, FIELDS)


def test_the_layouts_order_is_the_blobs_order():
    fields = list(reversed(FIELDS))
    assert values_blobs(EDGES, fields) == feasts(EDGES, fields)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.floats()),
                          st.one_of(st.none(), st.integers(-2**40, 2**40)),
                          st.one_of(st.none(), st.text(max_size=140))), min_size=1, max_size=30))
def test_any_rows_encode_as_feasts_conversion(rows):
    x, m, s = zip(*rows, strict=True)
    batch = pa.RecordBatch.from_pydict({"x": pa.array(x, pa.float64()),
                                        "m": pa.array(m, pa.int64()), "s": pa.array(s, pa.string())})
    fields = [FIELDS[0], FIELDS[2], FIELDS[3]]
    assert values_blobs(batch, fields) == feasts(batch, fields)


@pytest.mark.parametrize("column,dtype", [
    (pa.array([True, False]), Bool),                     # a type not encoded here
    (pa.array([1, 2], pa.int32()), Int64),               # not the declared type's column
    (pa.array([1.0, 2.0]), Int64),
])
def test_other_types_are_left_to_feasts_conversion(column, dtype):
    batch = pa.RecordBatch.from_pydict({"x": pa.array([1.0, 2.0]), "y": column})
    assert values_blobs(batch, [FIELDS[0], Field(name="y", dtype=dtype)]) is None


def test_a_column_of_nulls_is_empty_values():
    batch = pa.RecordBatch.from_pydict({"x": pa.array([None, None]), "s": pa.array([None, None])})
    assert values_blobs(batch, [FIELDS[0], FIELDS[3]]) == feasts(batch, [FIELDS[0], FIELDS[3]])


def test_entity_keys_are_feasts_serialization():
    ids = ["C0000001", "", "é" * 70, "naïve ✓", "x" * 300]
    batch = pa.RecordBatch.from_pydict({"customer_id": pa.array(ids)})
    want = [serialize_entity_key(EntityKey(join_keys=["customer_id"],
                                           entity_values=[Value(string_val=c)]), 3) for c in ids]
    assert entity_keys(batch, {"customer_id": ValueType.STRING}, 3) == want


@pytest.mark.parametrize("ids,join_keys,version", [
    (["a", None], {"customer_id": ValueType.STRING}, 3),      # a null key: Feast's error
    (["a", "b"], {"customer_id": ValueType.INT64}, 3),
    (["a", "b"], {"customer_id": ValueType.STRING}, 2),
])
def test_other_entity_keys_are_left_to_feast(ids, join_keys, version):
    batch = pa.RecordBatch.from_pydict({"customer_id": pa.array(ids, pa.string())})
    assert entity_keys(batch, join_keys, version) is None


def test_epochs_truncate_as_the_store_does():
    stamps = pd.to_datetime(["2024-03-01 10:00:00.999999", "1969-12-31 23:59:58.5",
                             "1970-01-01 00:00:00", None, "2038-01-19 03:14:08.000001"], utc=True,
                            format="ISO8601")
    column = pa.array(stamps, pa.timestamp("us", tz="UTC"))
    assert epochs(column) == [None if pd.isna(t) else epoch(t.to_pydatetime()) for t in stamps]
