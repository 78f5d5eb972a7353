"""``collect pause TASK_ID``: pause a job (the same rules as the web and the API)."""

from jobs import services
from jobs.management.control import ControlCommand


class Command(ControlCommand):
    help = "Pause a job by its task id."
    action = staticmethod(services.job_pause)
