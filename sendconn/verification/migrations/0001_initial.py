# The models of Verify delivery, moved here from the ops app. Their tables stay as they were (ops_verificationrun,
# ops_verificationstep): this migration creates the models in the migration state only; ops 0002 removes them
# from the ops app's state, again without touching the database.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('connectors', '0003_connector_informational_properties'),
        ('ops', '0001_verification_runs'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='VerificationRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('connector_name', models.CharField(max_length=64)),
                        ('requested_by', models.CharField(max_length=150)),
                        ('requested_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('server_name', models.CharField(max_length=64)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('status', models.CharField(choices=[('Running', 'Running'), ('Succeeded', 'Succeeded'), ('Failed', 'Failed')], default='Running', max_length=16)),
                        ('recipients', models.JSONField(default=list)),
                        ('error', models.TextField(blank=True)),
                        ('hint', models.TextField(blank=True)),
                        ('transcript', models.TextField(blank=True)),
                        ('connector', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='verification_runs', to='connectors.sendconnector')),
                    ],
                    options={
                        'db_table': 'ops_verificationrun',
                        'ordering': ['-requested_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='VerificationStep',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('position', models.PositiveSmallIntegerField()),
                        ('name', models.CharField(choices=[('Resolve', 'Resolve'), ('Connection', 'Connection'), ('SMTP EHLO', 'SMTP EHLO'), ('TLS', 'TLS'), ('Authentication', 'Authentication'), ('Send test email', 'Send test email')], max_length=24)),
                        ('next_hop', models.CharField(max_length=1024)),
                        ('status', models.CharField(choices=[('Pending', 'Pending'), ('Running', 'Running'), ('Succeeded', 'Succeeded'), ('Failed', 'Failed'), ('Skipped', 'Skipped')], default='Pending', max_length=16)),
                        ('details', models.TextField(blank=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('duration', models.DurationField(blank=True, null=True)),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='steps', to='verification.verificationrun')),
                    ],
                    options={
                        'db_table': 'ops_verificationstep',
                        'ordering': ['position'],
                    },
                ),
                migrations.AddField(
                    model_name='verificationrun',
                    name='failed_step',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='verification.verificationstep'),
                ),
                migrations.AddConstraint(
                    model_name='verificationstep',
                    constraint=models.UniqueConstraint(models.F('run'), models.F('position'), name='verificationstep_position_unique'),
                ),
                migrations.AddIndex(
                    model_name='verificationrun',
                    index=models.Index(fields=['connector', '-requested_at'], name='verificationrun_connector_idx'),
                ),
            ],
            database_operations=[],
        ),
    ]
