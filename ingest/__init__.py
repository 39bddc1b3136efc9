"""The write side: `python -m ingest` keeps an index in step with a folder of documents
(`ingest.sync.sync` is the same as a library call)."""
