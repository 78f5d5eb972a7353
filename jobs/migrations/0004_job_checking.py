from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0003_job_files_deleted_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="checking",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
