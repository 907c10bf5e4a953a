"""llmswitch: the cheapest model that is good enough, behind one API you host yourself."""

__version__ = "0.1.0"
