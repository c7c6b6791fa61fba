"""Load the built-in workflow templates (two_indicator, three_indicator, autogen_multi_agent,
custom), each with its version 1. Idempotent: an existing template of the same name is kept."""

from django.db import migrations

from workflows.templates import TEMPLATES


def load_templates(apps, schema_editor):
    Workflow = apps.get_model("workflows", "Workflow")
    WorkflowVersion = apps.get_model("workflows", "WorkflowVersion")
    for type_, template in TEMPLATES.items():
        workflow, created = Workflow.objects.get_or_create(
            type=type_,
            name=template["name"],
            defaults={
                "description": template["description"],
                "steps": template["steps"],
                "default_params": template["default_params"],
            },
        )
        if created:
            version = WorkflowVersion.objects.create(
                workflow=workflow,
                version_number=1,
                steps=workflow.steps,
                created_by="system",
                note="Built-in template",
            )
            workflow.current_version = version
            workflow.save(update_fields=["current_version"])


def unload_templates(apps, schema_editor):
    Workflow = apps.get_model("workflows", "Workflow")
    for type_, template in TEMPLATES.items():
        unused = Workflow.objects.filter(
            type=type_, name=template["name"], strategies__isnull=True, executions__isnull=True
        )
        for workflow in unused:
            workflow.current_version = None
            workflow.save(update_fields=["current_version"])
            workflow.versions.all().delete()
            workflow.delete()


class Migration(migrations.Migration):
    dependencies = [("workflows", "0002_constraints_and_extras")]

    operations = [migrations.RunPython(load_templates, unload_templates)]
