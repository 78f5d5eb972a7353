import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
        ("teams", "0002_team_job_id_and_name_trigrams"),
    ]

    operations = [
        migrations.AlterField(
            model_name="team",
            name="name",
            field=models.CharField(db_index=True, max_length=600),
        ),
        migrations.AlterField(
            model_name="team",
            name="manager",
            field=models.CharField(blank=True, db_index=True, max_length=20),
        ),
        migrations.CreateModel(
            name="TeamChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("team_id", models.BigIntegerField()),
                ("old_name", models.CharField(max_length=600)),
                ("old_description", models.TextField(blank=True)),
                ("old_manager", models.CharField(blank=True, max_length=20)),
                ("old_members", models.TextField(blank=True)),
                ("new_name", models.CharField(max_length=600)),
                ("new_description", models.TextField(blank=True)),
                ("new_manager", models.CharField(blank=True, max_length=20)),
                ("new_members", models.TextField(blank=True)),
                (
                    "job",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="jobs.job",
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
                "indexes": [models.Index(fields=["job", "id"], name="teams_change_job_id")],
            },
        ),
    ]
