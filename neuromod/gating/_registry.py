"""The one registry that resolves the string options of :mod:`neuromod.gating`.

Layer options (the excitation's hidden activation and the gate) accept either a registered name or a
``Callable[..., nn.Module]`` (a layer class or factory, as in torchvision's ``SqueezeExcitation``).
Plain choices (squeeze and context modes) are listed here too, so that every string the package
accepts is defined in one place.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from neuromod._checks import suggest

__all__ = [
    "CONTEXT_MODES",
    "LAYERS",
    "SQUEEZE_MODES",
    "LayerSpec",
    "layer_name",
    "resolve_layer",
]

#: A layer option: a registered name or a factory returning an ``nn.Module``.
LayerSpec = str | Callable[..., nn.Module]

#: Squeeze operators: how the descriptor ``s`` summarises the positions of each channel.
SQUEEZE_MODES: tuple[str, ...] = ("mean", "sum", "max", "attention")

#: How the task context ``k`` joins the squeeze descriptor ``s``.
CONTEXT_MODES: tuple[str, ...] = ("concat", "add")

#: Layer factories by option and name.
LAYERS: dict[str, dict[str, Callable[..., nn.Module]]] = {
    "gate": {
        "sigmoid": nn.Sigmoid,
        "hardsigmoid": nn.Hardsigmoid,
        "softplus": nn.Softplus,
    },
    "activation": {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "hardswish": nn.Hardswish,
    },
}


def resolve_layer(option: str, value: str | Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Return the layer factory for `value`, a registered name of `option` or a callable.

    Parameters
    ----------
    option : {"gate", "activation"}
        Which option is being resolved (also the parameter name in error messages).
    value : str or Callable[..., nn.Module]
        A registered name (see :data:`LAYERS`) or a factory that returns an ``nn.Module``.

    Returns
    -------
    Callable[..., nn.Module]
        The factory; call it with no arguments to build the layer.

    Raises
    ------
    ValueError
        If `value` is a string that is not registered for `option`.
    TypeError
        If `value` is neither a string nor callable.

    Examples
    --------
    >>> resolve_layer("gate", "sigmoid")
    <class 'torch.nn.modules.activation.Sigmoid'>
    """
    table = LAYERS[option]
    if isinstance(value, str):
        if value not in table:
            raise ValueError(f"{option}={value!r} is not one of {sorted(table)!r}{suggest(value, table)}")
        return table[value]
    if not callable(value):
        raise TypeError(
            f"{option} must be one of {sorted(table)!r} or a Callable[..., nn.Module], got {value!r}"
        )
    return value


def layer_name(value: str | Callable[..., nn.Module]) -> str:
    """Short printable name of a layer option (for ``extra_repr`` and recorded attributes)."""
    if isinstance(value, str):
        return value
    return getattr(value, "__name__", type(value).__name__)
