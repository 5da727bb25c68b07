"""Attribution attacks (``captum.robust.Perturbation`` subclasses), softplus surrogates and an
attack comparator whose metrics compare attributions."""

from captum_certified._utils.surrogate import SoftplusReLU6, softplus_surrogate
from captum_certified.robust._core.comparator import AttributionAttackComparator
from captum_certified.robust._core.l2_attack import AttributionL2Attack
from captum_certified.robust._core.manipulation import ExplanationManipulation
from captum_certified.robust._core.options import AttackOptions
from captum_certified.robust._core.pgd import LABEL_POLICIES, AttributionPGD
from captum_certified.robust._core.report import AttackReport

__all__ = [
    "LABEL_POLICIES",
    "AttackOptions",
    "AttackReport",
    "AttributionAttackComparator",
    "AttributionL2Attack",
    "AttributionPGD",
    "ExplanationManipulation",
    "SoftplusReLU6",
    "softplus_surrogate",
]
