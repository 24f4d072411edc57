from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0010_search_content"),
    ]

    operations = [
        migrations.CreateModel(
            name="OtelConversation",
            fields=[
                ("otel_trace_id", models.CharField(max_length=32, primary_key=True, serialize=False)),
                ("trace_id", models.CharField(max_length=128)),
            ],
        ),
    ]
