"""Where source exports come from: the built-in world (``world/``) and importers of public
datasets mapped onto the data contract (``ibm_telco``). Nothing here is imported by the rest
of ``features/``: these write the files that ``cem ingest`` reads."""
