"""pbglm.pl."""

__all__: list[str] = []
