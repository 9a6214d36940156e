"""Cross-region interoperability gateway: Beijing's city platform ⇄ national, Tianjin, Hebei."""

__version__ = "0.1.0"
