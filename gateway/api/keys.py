"""Typed application state (aiohttp ``AppKey``), shared by the factory and the handlers."""

from __future__ import annotations

from aiohttp import web

from gateway.config import Settings
from gateway.contracts import ContractsHolder
from gateway.intake import Intake
from gateway.metrics import Metrics
from gateway.store import Store
from gateway.worker import Worker

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
CONTRACTS = web.AppKey("contracts", ContractsHolder)
INTAKE = web.AppKey("intake", Intake)
WORKER = web.AppKey("worker", Worker)
