"""The end of the shutdown grace period, raised into whatever the worker's main thread is running."""

from __future__ import annotations


class GraceExpired(BaseException):
    """The grace period ran out mid-job: the job is requeued, never counted as its failure."""
