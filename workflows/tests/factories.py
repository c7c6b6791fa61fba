import factory

from workflows.models import Workflow, WorkflowType
from workflows.templates import TEMPLATES


class WorkflowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workflow

    name = factory.Sequence(lambda n: f"Workflow {n}")
    type = WorkflowType.TWO_INDICATOR
    steps = factory.LazyFunction(lambda: TEMPLATES["two_indicator"]["steps"])
    default_params = factory.LazyFunction(
        lambda: dict(TEMPLATES["two_indicator"]["default_params"])
    )
