"""Where source exports come from: the built-in world (``world/``) and company exports mapped
onto the data contract by a YAML mapping file (``mapping/``, mappings in ``configs/sources``).
Nothing here is imported by the rest of ``features/``: these write the files that ``cem ingest``
reads."""
