"""Stage 4: execute a plan, and keep the run safe while it runs.

- :mod:`~sqlrunner.execute.executor`: targets in parallel, steps in order, the queries
  of a step in parallel (the :class:`~sqlrunner.execute.executor.Executor`);
- :mod:`~sqlrunner.execute.results`: what a run produced, and its exit code;
- :mod:`~sqlrunner.execute.retry`: which errors are transient, how long to wait;
- :mod:`~sqlrunner.execute.state`, :mod:`~sqlrunner.execute.checkpoints`,
  :mod:`~sqlrunner.execute.runlock`: the run's record, checkpoints and lock in the target;
- :mod:`~sqlrunner.execute.targets`, :mod:`~sqlrunner.execute.connect_options`,
  :mod:`~sqlrunner.execute.embedded`: connections (libpq settings, TLS and IAM for
  PostgreSQL and Redshift, the embedded server);
- :mod:`~sqlrunner.execute.rowcounts`: sending a file whose rows nobody reads.

Kept empty of code: importing one of these modules loads only what it needs.
"""
