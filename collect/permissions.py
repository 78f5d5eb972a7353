"""Permission checks with one query instead of two.

Django's ``ModelBackend.has_perm`` loads every permission the user has, their own
and their groups' (two queries), into a set cached on the user object. A user
object lives for one request, and most requests ask one question: may this
user see everybody's jobs (``jobs.manage_all_jobs``)? That was two of the six
queries of a jobs-list request. Here one ``EXISTS`` query answers one
permission; the answer is cached on the user object for the rest of the
request, as Django caches its set.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q


class OneQueryModelBackend(ModelBackend):
    """``ModelBackend`` whose ``has_perm(user, "app_label.codename")`` costs one query.

    Same answers as Django's: False for an inactive user or an object
    permission, else whether the permission is granted to the user or to one of
    their groups. A superuser, and a user whose permission set Django has
    already cached (``get_all_permissions``, the admin), get Django's own check.
    """

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return False
        if user_obj.is_superuser or hasattr(user_obj, "_perm_cache"):
            # (``User.has_perm`` answers for an active superuser before asking a backend.)
            return super().has_perm(user_obj, perm, obj)
        answers: dict[str, bool] = user_obj.__dict__.setdefault("_one_perm_cache", {})
        if perm not in answers:
            app_label, _, codename = perm.partition(".")
            answers[perm] = (
                Permission.objects.filter(content_type__app_label=app_label, codename=codename)
                .filter(Q(user=user_obj) | Q(group__user=user_obj))
                .exists()
            )
        return answers[perm]
