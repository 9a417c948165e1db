from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0003_source_variant"),
    ]

    operations = [
        migrations.AddField(model_name="job", name="hand_back", field=models.BooleanField(default=False)),
        migrations.AddField(
            model_name="job", name="handbacks", field=models.PositiveSmallIntegerField(default=0)
        ),
    ]
