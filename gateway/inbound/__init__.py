"""Inbound cases (issue 15): partners submit cases to Beijing in their own contracts."""
