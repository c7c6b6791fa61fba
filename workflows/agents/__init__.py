"""The AutoGen decision team and the model clients behind it (see ``team`` and ``offline``)."""
