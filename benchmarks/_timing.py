"""The benchmark scripts' timing helpers: the same code as ``poolnd bench`` (``poolnd._timing``)."""
from poolnd._timing import interleaved, layer_contenders, load_average, p25, summarize

__all__ = ["interleaved", "layer_contenders", "load_average", "p25", "summarize"]
