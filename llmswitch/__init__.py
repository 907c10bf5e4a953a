"""llmswitch: the cheapest model that is good enough, behind one API you host yourself."""

from llmswitch import native as _native

__version__ = "0.1.0"

_native.install()  # the compiled request path, if a build matches these sources (see native.py)
