from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0004_token_buckets"),
    ]

    operations = [
        migrations.AddField(model_name="trace", name="flag_state", field=models.JSONField(default=dict)),
        migrations.AddField(model_name="trace", name="flag_kinds",
                            field=models.CharField(blank=True, default="", max_length=255)),
        migrations.AddField(model_name="trace", name="open_call_at", field=models.DateTimeField(null=True)),
        migrations.AddField(model_name="event", name="counted", field=models.BooleanField(default=True)),
    ]
