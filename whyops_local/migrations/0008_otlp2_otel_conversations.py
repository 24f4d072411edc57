from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0007_otlp"),
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
