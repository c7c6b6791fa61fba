from django.contrib import admin

from tradingsite.admin_forms import ServiceCheckedForm

from .engine import workflow_errors
from .models import AgentConversation, Workflow, WorkflowExecution, WorkflowMetrics, WorkflowVersion
from .services import EDITABLE, workflow_create, workflow_update


class WorkflowForm(ServiceCheckedForm):
    class Meta:
        model = Workflow
        fields = ("name", "type", "description", "steps", "default_params")

    def check(self, data):
        for error in workflow_errors(data.get("steps", [])):
            self.add_error("steps", str(error))


class WorkflowVersionInline(admin.TabularInline):
    model = WorkflowVersion
    fk_name = "workflow"
    fields = ("version_number", "created_by", "created_at", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ("name", "type", "current_version", "updated_at")
    list_filter = ("type",)
    list_select_related = ("current_version",)
    search_fields = ("name",)
    inlines = [WorkflowVersionInline]
    form = WorkflowForm

    def save_model(self, request, obj, form, change):
        # Through the services, so a change of steps writes a version by this user.
        fields = {name: form.cleaned_data[name] for name in EDITABLE if name in form.cleaned_data}
        if change:
            saved = workflow_update(workflow=obj, created_by=request.user, **fields)
        else:
            saved = workflow_create(created_by=request.user, **fields)
        obj.pk = saved.pk
        obj.refresh_from_db()


class AgentConversationInline(admin.TabularInline):
    model = AgentConversation
    fields = ("timestamp", "agent_name", "message_type", "message_content", "tokens_used")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WorkflowExecution)
class WorkflowExecutionAdmin(admin.ModelAdmin):
    list_display = ("id", "strategy", "workflow", "status", "started_at", "completed_at")
    list_filter = ("status", "workflow", "strategy")
    list_select_related = ("strategy", "workflow")
    date_hierarchy = "started_at"
    show_full_result_count = False
    inlines = [AgentConversationInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WorkflowMetrics)
class WorkflowMetricsAdmin(admin.ModelAdmin):
    list_display = ("workflow", "date")
    list_filter = ("workflow",)
    list_select_related = ("workflow",)
    date_hierarchy = "date"
