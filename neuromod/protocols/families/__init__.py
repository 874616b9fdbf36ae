"""The built-in model families: one adapter module per family, each with its one config class.

* :mod:`~neuromod.protocols.families.se`: the SE task model (:class:`neuromod.gating.SETaskModel`);
* :mod:`~neuromod.protocols.families.rate`: gated rate populations feeding the Wong & Wang (2006) circuit;
* :mod:`~neuromod.protocols.families.spiking`: the brian2 network (Wang 2002) with modulated LIF pools.

Each module registers its family when imported; :func:`neuromod.protocols.family.get_family` imports them on
demand, so nothing heavy (torch, brian2) is imported before a family is used.
"""
