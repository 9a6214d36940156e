"""Declarative mappings: YAML files compiled once into fast render functions.

Public surface (kept stable for the spine)::

    reg = MappingRegistry.load(mappings_dir, schemas_dir)   # ConfigError(file, line, key)
    m = reg.get("national/case-submit", version=None)       # CompiledMapping
    payload = m.render(source, context)                     # dict (json) | lxml element (xml)
    m.validate_output(payload)                              # OutputInvalid (a PermanentError)

The language is documented in ``mappings/README.md``. Modules: ``yamlload`` (line-aware YAML),
``codes`` (code tables), ``transforms`` (whitelist), ``jsonview``/``xsdmodel`` (schema views),
``compiler``+``xmlemit``+``codegen_util`` (spec → Python source), ``registry`` (files →
compiled mappings), ``schemas`` (validators), ``check``/``golden``/``scaffold`` (the tools behind
``gateway mapping``, whose commands are :mod:`gateway.cli.mapping`).
"""

from gateway.mapping.errors import MappingError, OutputInvalid
from gateway.mapping.registry import CompiledMapping, MappingRegistry

__all__ = ["CompiledMapping", "MappingError", "MappingRegistry", "OutputInvalid"]
