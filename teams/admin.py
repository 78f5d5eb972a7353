from django.contrib import admin

from teams.models import Team


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "manager", "job"]
    search_fields = ["name", "manager"]
    raw_id_fields = ["job"]
