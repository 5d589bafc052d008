"""A run on disk and in memory: its files, its record, the store (cache, queue), the one task → trainer map, the
run handle, fork, tracking and script export."""
