"""A view's rows as the compact online store's values blobs, straight from Arrow.

Feast's ``_convert_arrow_to_proto`` builds a ``Value`` protobuf per customer and feature in
Python (about 5 us each: two thirds of a fill's time on a 20k world, BENCHMARKS.md), then
the store packs them into one ``RepeatedValue`` per customer. Here each column is encoded
once, as a list of the serialized ``RepeatedValue`` elements of its rows, and a customer's
blob is the concatenation of its columns' elements, which is the protobuf encoding of the
``RepeatedValue`` of those values:

* ``double`` columns (Feast ``Float64``): fixed width, a tag, then the IEEE bytes, built
  with numpy for the whole column;
* ``int64`` and ``string`` columns (``Int64``, ``String``): dictionary-encoded by Arrow,
  each distinct value serialized by protobuf itself, then looked up per row;
* a null (and NaN, as Feast reads it) is an empty ``Value``; so is a column of Arrow's
  null type.

The entity keys are Feast's ``serialize_entity_key`` bytes, written without a protobuf per
customer (one string join key, version 3). Any other column type, or a type other than the
feature's declared one, returns None and the caller falls back to Feast's conversion.
Same bytes as Feast's conversion packed by the store: tested on the feature world and on edge
values (NaN, infinities, -0.0, negative and 64-bit integers, long and non-ASCII strings).
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast.infra.key_encoding_utils import serialize_entity_key_prefix
from feast.protos.feast.types.Value_pb2 import Value
from feast.protos.feast.types.Value_pb2 import ValueType as ProtoValueType
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

ELEMENT = b"\n"            # RepeatedValue.val: field 1, length-delimited
NULL = ELEMENT + b"\x00"   # an empty Value
DOUBLE = np.frombuffer(ELEMENT + b"\x09\x29", dtype=np.uint8)   # 9 bytes follow; double_val: field 5, 64-bit
DICTIONARY = {Int64: ("int64_val", (pa.int64(),)),
              String: ("string_val", (pa.string(), pa.large_string()))}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def element(value: Value) -> bytes:
    """One value as an element of a ``RepeatedValue``."""
    body = value.SerializeToString()
    return ELEMENT + varint(len(body)) + body


def doubles(column: pa.Array) -> list[bytes]:
    values = column.to_numpy(zero_copy_only=False).astype("<f8", copy=False)
    n = len(values)
    rows = np.empty((n, 11), dtype=np.uint8)
    rows[:, :3] = DOUBLE
    rows[:, 3:] = values.view(np.uint8).reshape(n, 8)
    flat = rows.tobytes()
    out = [flat[i:i + 11] for i in range(0, 11 * n, 11)]
    for i in np.flatnonzero(np.isnan(values)):   # nulls read as NaN
        out[i] = NULL
    return out


def dictionary(column: pa.Array, field: str) -> list[bytes]:
    encoded = column.dictionary_encode()
    words = [element(Value(**{field: v})) for v in encoded.dictionary.to_pylist()] + [NULL]
    indices = encoded.indices.fill_null(len(words) - 1).to_numpy(zero_copy_only=False)
    return [words[i] for i in indices]


def column_elements(column: pa.Array, dtype) -> list[bytes] | None:
    """A column's rows as ``RepeatedValue`` elements; None when its type is not handled."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.type == pa.null():
        return [NULL] * len(column)
    if dtype == Float64 and column.type == pa.float64():
        return doubles(column)
    if dtype in DICTIONARY and column.type in DICTIONARY[dtype][1]:
        return dictionary(column, DICTIONARY[dtype][0])
    return None


def values_blobs(batch: pa.RecordBatch | pa.Table, features) -> list[bytes] | None:
    """Each row's values blob for ``features`` (Feast ``Field``s, in the layout's order), or
    None when a column's type is not handled here."""
    columns = []
    for f in features:
        elements = column_elements(batch.column(f.name), f.dtype)
        if elements is None:
            return None
        columns.append(elements)
    return [b"".join(row) for row in zip(*columns, strict=True)]


def entity_keys(batch: pa.RecordBatch | pa.Table, join_keys: dict,
                version: int) -> list[bytes] | None:
    """Each row's entity key as Feast's ``serialize_entity_key`` writes it (version 3, one
    string join key: a constant prefix, the value's type and length, its UTF-8 bytes); None
    for anything else (other versions, types, several keys, a null key)."""
    if version != 3 or len(join_keys) != 1:
        return None
    (name, value_type), = join_keys.items()
    column = batch.column(name)
    if (value_type != ValueType.STRING or column.type not in DICTIONARY[String][1]
            or column.null_count):
        return None
    head = serialize_entity_key_prefix([name], 3) + struct.pack("<I", ProtoValueType.STRING)
    return [head + struct.pack("<I", len(b)) + b
            for b in (v.encode("utf8") for v in column.to_pylist())]


def epochs(column: pa.Array) -> list[int | None]:
    """Timestamps as whole seconds since the epoch, truncated as ``int(ts.timestamp())`` is."""
    micros = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
    seconds = pc.cast(pc.divide(pc.cast(micros, pa.float64()), 1e6), pa.int64(), safe=False)
    return seconds.to_pylist()
