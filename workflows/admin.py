from django.contrib import admin

from .models import AgentConversation, Workflow, WorkflowExecution, WorkflowMetrics, WorkflowVersion


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
