"""`ser sweep`: the papers' tables as presets (`presets`, `spec`), cells checked and
content-addressed (`cells`), trained in-process or on dask (`runner`), reported as the
papers print them (`report`, `plots`), and the papers' claims judged (`claims`)."""
