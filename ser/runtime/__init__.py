"""Process-wide runtime decisions, each made in one place: device, precision, threads,
dask workers; and units and plain progress lines."""
