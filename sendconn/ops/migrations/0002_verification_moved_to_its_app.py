# Verify delivery's models moved to the verification app (its 0001): removed from the ops app's migration state
# only. The tables (ops_verificationrun, ops_verificationstep) and their rows stay; the verification app uses them.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('ops', '0001_verification_runs'),
        ('verification', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name='verificationrun', name='failed_step'),
                migrations.DeleteModel(name='VerificationStep'),
                migrations.DeleteModel(name='VerificationRun'),
            ],
            database_operations=[],
        ),
    ]
