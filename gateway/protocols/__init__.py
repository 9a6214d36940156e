"""Wire protocols: how a mapped payload reaches a partner, and what its answer means.

Each protocol style (``rest-json``, SOAP styles) is a factory registered in :data:`FACTORIES`;
a partner is a configuration entry naming one, so onboarding a partner writes no Python.
"""
