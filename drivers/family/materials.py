"""Linear attenuation coefficients of the family's materials, per mm, at the effective energy
at the detector of a 75–95 kVp beam with 0.1–0.3 mm Cu added filtration, hardened by the
patient (about 55 keV).

Approximate values from the NIST XCOM mass attenuation coefficients (μ/ρ × ρ), rounded: the
family needs plausible *relative* attenuations (soft tissue < cancellous < cortical bone <
titanium < steel < copper < tantalum), not a dosimetric beam model; beam hardening is ignored.
Objects embedded in the body are drawn with their attenuation *over soft tissue*
(``excess``), since they displace it; gas has a negative excess.
"""

from __future__ import annotations

SOFT_TISSUE = 0.0215  # water, muscle
FAT = 0.0190
CANCELLOUS_BONE = 0.033  # trabecular bone with marrow
CORTICAL_BONE = 0.069
TITANIUM = 0.25  # Ti-6Al-4V: screws, rods, cages
COBALT_CHROME = 0.70  # rods
STEEL = 1.20  # stainless steel: needles, K-wires, clips, hub ferrules
COPPER = 1.80  # lead wires
TANTALUM = 7.0  # radiographic markers of PEEK cages
PEEK = 0.028  # polyether ether ketone: radiolucent cages
PLASTIC = 0.024  # polycarbonate / polypropylene: needle hubs, lead insulation
CARBON_FIBRE = 0.032  # table tops
SILVER_CHLORIDE = 1.00  # ECG electrode snaps (Ag/AgCl plated studs)


def excess(mu_per_mm: float) -> float:
    """Attenuation of a material over the soft tissue it displaces, per mm."""
    return mu_per_mm - SOFT_TISSUE
