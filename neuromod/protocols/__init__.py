"""Protocols: run a model under an experimental protocol and return a neuromod result.

Protocols compose the model families (``gating``, ``rate``, ``spiking``) with the tasks; the model packages
know nothing of them. Each runnable experiment registers itself in :mod:`neuromod.registry`.
"""
