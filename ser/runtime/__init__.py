"""Process-wide runtime decisions, each made in one place: threads, precision, heap,
dask cluster, units, plain progress lines."""
