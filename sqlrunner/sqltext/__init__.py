"""Pure functions over SQL text: no database, no stage of the run.

- :mod:`~sqlrunner.sqltext.split`: statements of a file, as the server splits them;
- :mod:`~sqlrunner.sqltext.shape`: how a file stands towards transactions;
- :mod:`~sqlrunner.sqltext.position`: a server error's offset as file line, column, caret;
- :mod:`~sqlrunner.sqltext.session`: Redshift's ``SET query_group`` / ``wlm_query_slot_count``;
- :mod:`~sqlrunner.sqltext.upsert`: the ``upsert:`` option, checked, and its statements.
"""
