"""The benchmark scripts' timing helpers: the same code as ``poolnd bench`` (``poolnd._timing``)."""
from poolnd._timing import interleaved, load_average, p25, summarize  # noqa: F401
