"""sustain_rs: SuStaIn (Subtype and Stage Inference) in Rust, with pySuStaIn's API.

Switch from pySuStaIn by changing one import::

    from sustain_rs import ZscoreSustain          # was: from pySuStaIn import ZscoreSustain

The classes take pySuStaIn's constructor arguments, their methods return the same
arrays, and they write and reuse the same pickle files. Extra keyword arguments
(``n_chains``, ``backend``, ``threads``, ``progress``) and methods
(``diagnostics``, ``to_inference_data``) give what pySuStaIn has not.
"""

from ._native import __version__
from ._abstract import AbstractSustain, SustainData
from ._families import (
    MixtureSustain,
    MixtureSustainData,
    OrdinalSustain,
    OrdinalSustainData,
    ZScoreSustainData,
    ZscoreSustain,
    ZscoreSustainMissingData,
)
from ._mixed import MixedTypeSustain, MixedTypeSustainData
from ._mixture_fit import fit_mixtures

__all__ = [
    "AbstractSustain",
    "MixedTypeSustain",
    "MixedTypeSustainData",
    "MixtureSustain",
    "MixtureSustainData",
    "OrdinalSustain",
    "OrdinalSustainData",
    "SustainData",
    "ZScoreSustainData",
    "ZscoreSustain",
    "ZscoreSustainMissingData",
    "__version__",
    "fit_mixtures",
]
