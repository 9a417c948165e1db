from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0007_network"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="partial_preview",
            field=models.FileField(blank=True, max_length=255, upload_to=""),
        ),
    ]
