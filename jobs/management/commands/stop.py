"""``collect stop TASK_ID``: stop a job (the same rules as the web and the API)."""

from jobs import services
from jobs.management.control import ControlCommand


class Command(ControlCommand):
    help = "Stop a job by its task id."
    action = staticmethod(services.job_stop)
