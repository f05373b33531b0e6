"""Package-wide settings (threads)."""

from __future__ import annotations

from contextlib import contextmanager


class _Settings:
    """Package-wide settings.

    Attributes
    ----------
    n_jobs
        Number of threads used by the numba kernels. ``None`` (default) uses every core that
        numba sees; a positive integer limits it. Functions with an ``n_jobs`` argument
        override it for one call.
    """

    def __init__(self) -> None:
        self.n_jobs: int | None = None

    def resolve_n_jobs(self, n_jobs: int | None = None) -> int:
        """Return the effective number of threads for a call."""
        import numba  # imported on first use: `import pbglm` stays light

        n = self.n_jobs if n_jobs is None else n_jobs
        max_threads = numba.config.NUMBA_NUM_THREADS
        if n is None or n == -1:
            return max_threads
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n_jobs must be a positive integer, -1 or None, got {n!r}.")
        return min(int(n), max_threads)

    @contextmanager
    def threads(self, n_jobs: int | None = None):
        """Run the enclosed kernels with at most ``n_jobs`` threads."""
        import numba

        old = numba.get_num_threads()
        numba.set_num_threads(self.resolve_n_jobs(n_jobs))
        try:
            yield
        finally:
            numba.set_num_threads(old)


settings = _Settings()

__all__ = ["settings"]
