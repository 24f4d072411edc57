from django.db import migrations, models

from whyops_local.domain.events import KIND_NAMES


class Migration(migrations.Migration):

    dependencies = [
        ("whyops_local", "0006b_search"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="event_type",
            field=models.CharField(choices=list(KIND_NAMES.items()), max_length=32),
        ),
    ]
