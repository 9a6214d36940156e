"""Typed application state (aiohttp ``AppKey``), shared by the factory and the handlers."""

from __future__ import annotations

from aiohttp import web

from gateway.config import Settings
from gateway.contracts import ContractsHolder
from gateway.intake.accept import Intake
from gateway.observability.metrics import Metrics
from gateway.store import Store
from gateway.delivery.worker import Worker

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
CONTRACTS = web.AppKey("contracts", ContractsHolder)
INTAKE = web.AppKey("intake", Intake)
WORKER = web.AppKey("worker", Worker)
