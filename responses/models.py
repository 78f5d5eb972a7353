"""Form responses as the seed collected them, and nothing more."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Gender(models.TextChoices):
    MALE = "Male"
    FEMALE = "Female"
    OTHER = "Other"


class FormResponse(models.Model):
    timestamp = models.DateTimeField()
    # Who recorded the response; kept when that account is deleted.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="form_responses",
    )
    name_of_respondent = models.CharField(max_length=100)
    gender_of_respondent = models.CharField(max_length=6, choices=Gender.choices)
    reading_books = models.BooleanField(default=False)
    listening_music = models.BooleanField(default=False)
    mobile_no = models.CharField(max_length=20, blank=True)
    record_latitude = models.DecimalField(max_digits=9, decimal_places=6)
    record_longitude = models.DecimalField(max_digits=9, decimal_places=6)

    class Meta:
        # The export reads pages in (timestamp, id) order from a range: keyset pagination.
        indexes = [models.Index(fields=["timestamp", "id"], name="formresponse_ts_id")]
        # Personal data: exporting (and listing) responses needs this, granted in
        # the admin to users or groups; superusers have it. See responses/policy.py.
        permissions = [("export_responses", "Can export form responses (personal data)")]

    def __str__(self) -> str:
        return f"{self.name_of_respondent} at {self.timestamp:%Y-%m-%d %H:%M}"


class MailRecipient(models.Model):
    """A mailbox exports are mailed to: the row its daily cap is counted under.

    ``policy.recipient_locked`` makes it if need be and locks it (``SELECT …
    FOR UPDATE``) for the transaction that counts the mailbox's mails and
    records the next one, so concurrent requests for one mailbox (from
    different users, or "Send again" on different exports) are counted one at
    a time. One row per ``policy.mailbox`` (lower case, no ``+tag``); nothing
    else is kept here.
    """

    address = models.CharField(max_length=254, unique=True)

    def __str__(self) -> str:
        return self.address
