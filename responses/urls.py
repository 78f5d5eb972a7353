from django.urls import path

from responses import browse, views

urlpatterns = [
    # The seed's URL: GET shows the prefilled form, POST starts the export.
    path("export_data/", views.ExportView.as_view(), name="responses-export"),
    path("export_data/download/<str:token>", views.download, name="responses-download"),
    path(
        "export_data/<uuid:task_id>/send-again",
        views.SendAgainView.as_view(),
        name="responses-send-again",
    ),
    path(
        "api/exports/responses/<uuid:task_id>/send-again/",
        views.SendAgainApiView.as_view(),
        name="api-responses-send-again",
    ),
    path("responses/", browse.response_list, name="response-list"),
    path("api/exports/responses/", views.ExportApiView.as_view(), name="api-responses-export"),
]
