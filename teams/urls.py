from django.urls import path

from teams import browse, views

urlpatterns = [
    # The seed's URL, kept exactly.
    path("import_teams/", views.ImportTeamsView.as_view(), name="import-teams"),
    path("import_teams/sample.csv", views.sample_csv, name="import-teams-sample"),
    path("api/imports/teams/", views.ImportTeamsApi.as_view(), name="api-import-teams"),
    path("import_teams/<uuid:task_id>/apply", views.ApplyDryRunView.as_view(), name="import-apply"),
    path(
        "api/imports/teams/<uuid:task_id>/apply/",
        views.ApplyDryRunApi.as_view(),
        name="api-import-apply",
    ),
    path("teams/", browse.team_list, name="team-list"),
]
