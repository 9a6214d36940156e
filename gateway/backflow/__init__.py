"""National data back-flow (数据回流, issue 15): pull the national export page by page from a
checkpoint, map each record with its mapping file, dedupe by version, queue batches for the city
platform (:mod:`gateway.store.backflow`), and move a case's status on a case result.

    settings.py   BackflowSettings (the ``backflow`` block of the configuration)
    mapper.py     the record mappings (mappings/backflow/*.yaml), compiled once per kind
    apply.py      case results → the status state machine
    pull.py       the walk: checkpoint → pages → map → apply → store page + checkpoint
    job.py        the scheduled pull in the gateway (off unless a source is configured)
"""
