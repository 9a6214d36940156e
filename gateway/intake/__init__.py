"""The way in for the city platform's cases: strict JSON reading (``jsoninput``), validation
against Beijing's case schema and what the domain knows (``validation``), and acceptance
(``accept``: normalise, route, check every planned delivery can be delivered, store the case
and its deliveries in one transaction, answer)."""
