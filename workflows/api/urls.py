from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    AgentPerformanceView,
    AgentUsageView,
    BacktestTaskView,
    ExecutionViewSet,
    ProbeResultViewSet,
    WorkflowMetricsViewSet,
    WorkflowViewSet,
)

router = SimpleRouter()
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("executions", ExecutionViewSet, basename="execution")
router.register("workflow-metrics", WorkflowMetricsViewSet, basename="workflow-metrics")
router.register("backtests", ProbeResultViewSet, basename="backtest")

# Endpoints that are not a viewset; the API root includes them beside the routers.
extra_urlpatterns = [
    path("agents/performance/", AgentPerformanceView.as_view(), name="agent-performance"),
    path("agents/usage/", AgentUsageView.as_view(), name="agent-usage"),
    path("backtests/tasks/<str:task_id>/", BacktestTaskView.as_view(), name="backtest-task"),
]

urlpatterns = [*extra_urlpatterns, *router.urls]
