"""The seed specification of the schema and the check that the live database matches it.

``reference`` is the specification, written by hand from seeds 000 and 001; ``compare`` measures
a database against it (``manage.py check_schema``, startup, ``manage.py check``).
"""
