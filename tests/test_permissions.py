"""collect.permissions.OneQueryModelBackend answers as Django's ModelBackend, in one query."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from collect.permissions import OneQueryModelBackend

pytestmark = pytest.mark.django_db

PERMS = ["jobs.manage_all_jobs", "teams.change_team", "auth.add_user", "nope.nothing", "bad"]


def people(django_user_model: Any) -> list[Any]:
    manage = Permission.objects.get(codename="manage_all_jobs")
    direct = django_user_model.objects.create_user("direct")
    direct.user_permissions.add(manage)
    grouped = django_user_model.objects.create_user("grouped")
    group = Group.objects.create(name="leads")
    group.permissions.add(manage, Permission.objects.get(codename="add_user"))
    grouped.groups.add(group)
    inactive = django_user_model.objects.create_user("inactive", is_active=False)
    inactive.user_permissions.add(manage)
    boss = django_user_model.objects.create_superuser("boss")
    plain = django_user_model.objects.create_user("plain")
    return [direct, grouped, inactive, boss, plain]


def test_the_same_answers_as_djangos_backend(django_user_model: Any) -> None:
    for person in people(django_user_model):
        for perm in PERMS:
            ours = OneQueryModelBackend().has_perm(
                django_user_model.objects.get(pk=person.pk), perm
            )
            django = ModelBackend().has_perm(django_user_model.objects.get(pk=person.pk), perm)
            assert ours == django, (person.username, perm)


def test_one_query_per_permission_then_none(django_user_model: Any) -> None:
    grouped = django_user_model.objects.get(pk=people(django_user_model)[1].pk)
    with CaptureQueriesContext(connection) as queries:
        assert grouped.has_perm("jobs.manage_all_jobs")
        assert grouped.has_perm("jobs.manage_all_jobs")
        assert not grouped.has_perm("teams.change_team")
    assert len(queries) == 2


def test_an_object_permission_is_never_granted(django_user_model: Any) -> None:
    boss = people(django_user_model)[3]
    assert not OneQueryModelBackend().has_perm(boss, "jobs.manage_all_jobs", obj=object())
