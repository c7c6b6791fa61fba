"""The built-in workflow templates: the seed system's strategies as step lists.

``{{name}}`` placeholders are filled from the effective parameters (the workflow's
``default_params`` overridden by the strategy's ``param``).
"""

CHART_INDICATORS = [
    "sma_20",
    "sma_50",
    "sma_200",
    "macd",
    "rsi_14",
    "bollinger",
    "supertrend",
    "atr_14",
]

RISK_DEFAULTS = {
    "min_r_coefficient": "1.0",
    "min_profit_margin": "0.05",
    "risk_per_trade": "0.01",
    "account_size": "100000",
}


def _fetch(n):
    return {
        "type": "fetch_data",
        "config": {
            "period": f"{{{{period_{n}}}}}",
            "bar": f"{{{{bar_{n}}}}}",
            "indicators": CHART_INDICATORS,
        },
    }


_GATE_AND_ORDER = [
    {
        "type": "validate_risk",
        "config": {
            "min_r_coefficient": "{{min_r_coefficient}}",
            "min_profit_margin": "{{min_profit_margin}}",
        },
    },
    {"type": "place_order", "config": {"order_type": "LMT", "tif": "DAY"}},
    {"type": "wait", "config": {"seconds": 1}},
]

_TEAM = {
    "type": "autogen_team",
    "config": {"agents": ["TechnicalAnalyst", "RiskManager", "Executor"], "max_rounds": 10},
}

TEMPLATES = {
    "two_indicator": {
        "name": "Two indicator (daily + weekly)",
        "description": (
            "Daily and weekly bars with indicators, an agent team decides, risk gate, limit order."
        ),
        "steps": [
            _fetch(1),
            _fetch(2),
            {"type": "generate_chart", "config": {}},
            _TEAM,
            {"type": "decide", "config": {}},
            *_GATE_AND_ORDER,
        ],
        "default_params": {
            "period_1": "1 Y",
            "bar_1": "1 day",
            "period_2": "2 Y",
            "bar_2": "1 week",
            **RISK_DEFAULTS,
        },
    },
    "three_indicator": {
        "name": "Three indicator (daily + weekly + monthly)",
        "description": "As two indicator, with a monthly timeframe added.",
        "steps": [
            _fetch(1),
            _fetch(2),
            _fetch(3),
            {"type": "generate_chart", "config": {}},
            _TEAM,
            {"type": "decide", "config": {}},
            *_GATE_AND_ORDER,
        ],
        "default_params": {
            "period_1": "1 Y",
            "bar_1": "1 day",
            "period_2": "2 Y",
            "bar_2": "1 week",
            "period_3": "5 Y",
            "bar_3": "1 month",
            **RISK_DEFAULTS,
        },
    },
    "autogen_multi_agent": {
        "name": "AutoGen multi-agent",
        "description": "A larger agent team debates daily and weekly data before deciding.",
        "steps": [
            _fetch(1),
            _fetch(2),
            {
                "type": "autogen_team",
                "config": {
                    "agents": ["TechnicalAnalyst", "RiskManager", "Executor"],
                    "max_rounds": 10,
                },
            },
            {"type": "consolidate", "config": {}},
            {"type": "decide", "config": {}},
            *_GATE_AND_ORDER,
        ],
        "default_params": {
            "period_1": "1 Y",
            "bar_1": "1 day",
            "period_2": "2 Y",
            "bar_2": "1 week",
            **RISK_DEFAULTS,
        },
    },
    "custom": {
        "name": "Custom",
        "description": "An empty starting point.",
        "steps": [],
        "default_params": dict(RISK_DEFAULTS),
    },
}


def strategy_steps(*, strategy_type, workflow):
    """The steps a strategy runs and their default parameters.

    With no workflow, the legacy inline template of the strategy's type.
    """
    if workflow is not None:
        return workflow.steps, dict(workflow.default_params or {})
    template = TEMPLATES.get(strategy_type, TEMPLATES["custom"])
    return template["steps"], dict(template["default_params"])
