"""Statuses coming in: the partners' status callbacks (:mod:`gateway.statuses.callbacks`), each
endpoint in its partner's own contract, every decoded event handed to the one store door
(:class:`gateway.store.statuses.StatusEvents`)."""
