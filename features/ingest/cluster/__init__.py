"""``cem ingest`` per partition on a Dask cluster: the in-process files, byte for byte.

Tables are split by a hash of their key (every occurrence of a key in one partition);
survey responses and complaints are resolved per bucket of their normalised identifier and
linked to invitations per customer bucket. Modules: ``parts`` (reading a partition, part
files), ``merge`` (part files into a table, a row group at a time), ``tables`` (a
partition's validation), ``resolve`` (identifier and customer buckets), ``side`` (the
company's attribute and event tables), ``driver`` (the client's side), ``scope`` (which
scheduler).
Design and what stays in-process: docs/cluster.md#ingest-on-the-cluster
"""

from features.ingest.cluster.scope import current_scheduler, ingest_on

__all__ = ["current_scheduler", "ingest_on"]
