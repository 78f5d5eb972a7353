"""Collect: a data collection platform with stoppable background jobs."""

from collect.celery import app as celery_app

__all__ = ["celery_app"]
