from django.urls import include, path
from rest_framework.routers import SimpleRouter

from jobs import api, views

router = SimpleRouter()
router.register("tasks", api.JobViewSet, basename="api-task")

urlpatterns = [
    path("", views.home, name="home"),
    path("tasks/", views.job_list, name="job-list"),
    path("tasks/fragment/", views.job_list_fragment, name="job-list-fragment"),
    path("tasks/<uuid:task_id>/", views.job_detail, name="job-detail"),
    path("tasks/<uuid:task_id>/fragment/", views.job_detail_fragment, name="job-detail-fragment"),
    path("tasks/<uuid:task_id>/result", views.job_result, name="job-result"),
    path("tasks/<uuid:task_id>/errors.csv", views.job_error_report, name="job-error-report"),
    path(
        "tasks/<uuid:task_id>/<str:action>/",
        views.JobActionView.as_view(),
        name="job-action",
    ),
    # The seed's URL, kept exactly (no trailing slash).
    path(
        "stop_task/<uuid:task_id>",
        views.JobActionView.as_view(),
        {"action": "stop"},
        name="stop-task",
    ),
    path("api/", api.ApiRoot.as_view(), name="api-root"),
    path("api/", include(router.urls)),
]
