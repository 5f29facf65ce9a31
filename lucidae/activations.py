"""Former home of the activation recorder, kept so that old imports still work: it is :mod:`lucidae.record` now.

"Activation" names the activation functions of a model (``ModelConfig.activation``);
the module that records a layer's outputs is named for what it does.
"""

from lucidae.record import record_activations

__all__ = ["record_activations"]
