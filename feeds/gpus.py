"""The canonical GPU registry and the provider-name normaliser.

Every provider spells a GPU its own way ("NVIDIA H100 80GB HBM3", "H100 SXM",
"Standard_ND96isr_H100_v5", "p5.48xlarge", "Nvidia H100 80GB GPU running in Americas").
This module maps such a string to one canonical :data:`ModelId` plus the number of GPUs
the string names (1 for a GPU, 8 for an 8-GPU instance SKU), so adapters can divide an
instance price down to USD per GPU(-hour).

Matching rules (deliberately strict; a wrong model is worse than a missing one):

* A name is reduced to a *key*: NFKC, lower case, split into runs of letters and runs of
  digits (so ``"H100-SXM5_80GB"``, ``"h100 sxm5 80 gb"`` and ``"H100 SXM5 80GB"`` share a
  key), and a leading vendor word (``nvidia``, ``amd``) dropped. Case, whitespace and
  punctuation therefore never matter; the *sequence of words and numbers* always does.
* The key must equal, in full, one entry of an explicit table (GPU aliases, instance SKUs,
  provider-scoped catalog names). There is no prefix, substring or fuzzy matching, so
  "H100 NVL" can never land on H100-SXM, and a bare "H100" or "A100 80GB" (ambiguous
  between form factors) is unknown.
* MIG slices ("1g.10gb", "H100 MIG 3g.40gb") are recognised first and raised as
  :class:`MigSliceName`: a slice is not a GPU and must never be priced as one.
* Anything else raises :class:`~feeds.errors.UnknownGpuName`; adapters report such names
  in ``ParseResult.unknown_names`` so the table can be extended on purpose.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from feeds.errors import UnknownGpuName
from feeds.model import ModelId

__all__ = [
    "KNOWN_NAMES",
    "MODELS",
    "GpuMatch",
    "GpuSpec",
    "MigSliceName",
    "Segment",
    "canonical_key",
    "is_mig_slice",
    "normalise",
    "spec",
]


class Segment(StrEnum):
    DATA_CENTRE = "data-centre"
    CONSUMER = "consumer"


@dataclass(frozen=True)
class GpuSpec:
    """Published vendor figures for one GPU model.

    ``fp16_tflops`` / ``bf16_tflops`` are *dense* tensor-core figures (the datasheets'
    headline numbers are "with sparsity", i.e. twice these). For GeForce cards the figure
    is the one with FP32 accumulate, the mode comparable to data-centre parts.
    """

    model: ModelId
    vendor: str
    name: str
    vram_gb: int
    memory_type: str
    fp16_tflops: Decimal
    bf16_tflops: Decimal
    segment: Segment
    released: date  # vendor launch / announcement date


def _spec(
    model: str,
    name: str,
    vram_gb: int,
    memory: str,
    tflops: str,
    *,
    segment: Segment = Segment.DATA_CENTRE,
    released: date,
    vendor: str = "NVIDIA",
) -> GpuSpec:
    # FP16 and BF16 dense tensor throughput are equal on every model listed here.
    return GpuSpec(
        ModelId(model),
        vendor,
        name,
        vram_gb,
        memory,
        Decimal(tflops),
        Decimal(tflops),
        segment,
        released,
    )


_SPECS: tuple[GpuSpec, ...] = (
    # NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200): BF16/FP16 1,979 TFLOPS
    # "with sparsity"; same GH100 SXM silicon and clocks as H100 SXM, so 989.4 dense;
    # 141 GB HBM3e. Announced SC23, 2023-11-13.
    _spec("H200", "H200 SXM 141GB", 141, "HBM3e", "989.4",
          released=date(2023, 11, 13)),
    # NVIDIA H100 Tensor Core GPU architecture whitepaper (H100 SXM5): BF16/FP16 tensor
    # 989.4 dense, 1,978.9 sparse (datasheet: "1,979*"); 80 GB HBM3. Announced 2022-03-22.
    _spec("H100-SXM", "H100 SXM5 80GB", 80, "HBM3", "989.4",
          released=date(2022, 3, 22)),
    # NVIDIA H100 datasheet, PCIe column: 1,513 sparse -> 756.5 dense; 80 GB HBM2e.
    _spec("H100-PCIE", "H100 PCIe 80GB", 80, "HBM2e", "756.5",
          released=date(2022, 3, 22)),
    # NVIDIA H100 datasheet, H100 NVL column (per GPU): 1,671 sparse -> 835.5 dense;
    # 94 GB HBM3. Announced GTC 2023-03-21.
    _spec("H100-NVL", "H100 NVL 94GB", 94, "HBM3", "835.5",
          released=date(2023, 3, 21)),
    # NVIDIA A100 datasheet (nvidia.com/en-us/data-center/a100): FP16/BF16 312 dense
    # (624 sparse) for every A100 variant. 80GB SXM announced SC20, 2020-11-16.
    _spec("A100-SXM-80GB", "A100 SXM4 80GB", 80, "HBM2e", "312",
          released=date(2020, 11, 16)),
    # A100 40GB SXM4 (Ampere launch, GTC 2020-05-14); HBM2.
    _spec("A100-SXM-40GB", "A100 SXM4 40GB", 40, "HBM2", "312",
          released=date(2020, 5, 14)),
    # A100 40GB PCIe, announced 2020-06-22; HBM2.
    _spec("A100-PCIE-40GB", "A100 PCIe 40GB", 40, "HBM2", "312",
          released=date(2020, 6, 22)),
    # A100 80GB PCIe, announced 2021-06-28; HBM2e.
    _spec("A100-PCIE-80GB", "A100 PCIe 80GB", 80, "HBM2e", "312",
          released=date(2021, 6, 28)),
    # NVIDIA L40S datasheet: FP16/BF16 tensor 362.05 dense (733 sparse); 48 GB GDDR6.
    # Announced SIGGRAPH 2023-08-08.
    _spec("L40S", "L40S 48GB", 48, "GDDR6", "362.05",
          released=date(2023, 8, 8)),
    # NVIDIA L4 datasheet: FP16/BF16 tensor 242 sparse -> 121 dense; 24 GB GDDR6.
    # Announced GTC 2023-03-21.
    _spec("L4", "L4 24GB", 24, "GDDR6", "121",
          released=date(2023, 3, 21)),
    # NVIDIA A10 datasheet: FP16/BF16 tensor 250 sparse -> 125 dense; 24 GB GDDR6.
    # Announced GTC 2021-04-12.
    _spec("A10", "A10 24GB", 24, "GDDR6", "125",
          released=date(2021, 4, 12)),
    # NVIDIA Ada Lovelace architecture whitepaper (v2.1), RTX 4090: FP16/BF16 tensor with
    # FP32 accumulate 165.2 dense (330.4 sparse); 24 GB GDDR6X. On sale 2022-10-12.
    _spec("RTX-4090", "GeForce RTX 4090", 24, "GDDR6X", "165.2",
          released=date(2022, 10, 12), segment=Segment.CONSUMER),
    # NVIDIA RTX Blackwell GPU architecture whitepaper, RTX 5090: FP16 tensor 838 sparse /
    # 419 dense with FP16 accumulate; GeForce runs FP32 accumulate at half rate -> 209.5
    # dense; 32 GB GDDR7. On sale 2025-01-30.
    _spec("RTX-5090", "GeForce RTX 5090", 32, "GDDR7", "209.5",
          released=date(2025, 1, 30), segment=Segment.CONSUMER),
    # AMD Instinct MI300X datasheet (amd.com): FP16/BF16 1,307.4 dense (2,614.9 with
    # sparsity); 192 GB HBM3. Launched 2023-12-06 ("Advancing AI").
    _spec("MI300X", "Instinct MI300X OAM", 192, "HBM3", "1307.4",
          released=date(2023, 12, 6), vendor="AMD"),
)  # fmt: skip

MODELS: Mapping[ModelId, GpuSpec] = MappingProxyType({s.model: s for s in _SPECS})


def spec(model: str) -> GpuSpec:
    """The spec of a canonical model id; ``UnknownGpuName`` for anything else."""
    try:
        return MODELS[ModelId(model)]
    except KeyError:
        raise UnknownGpuName(model) from None


@dataclass(frozen=True)
class GpuMatch:
    model: ModelId
    gpus: int  # GPUs the matched string names: 1 for a GPU, 8 for "p5.48xlarge"


class MigSliceName(UnknownGpuName):
    """A MIG slice ("1g.10gb", "H100 MIG 3g.40gb"): recognised, and refused as a GPU."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.args = (f"MIG slice {name!r} is not a whole GPU",)


# --- keys -------------------------------------------------------------------------

_WORDS = re.compile(r"[a-z]+|[0-9]+")
_VENDOR_WORDS = frozenset({"nvidia", "amd"})
# "1g.10gb", "3g.40gb", "7g.80gb", also the compute-instance form "1c.3g.40gb".
_MIG_PROFILE = re.compile(r"(?<![a-z0-9])[0-9]+g\.[0-9]+gb(?![a-z0-9])")


def canonical_key(name: str) -> str:
    """The lookup key of a provider string (see the module docstring)."""
    words = _WORDS.findall(unicodedata.normalize("NFKC", name).lower())
    if words and words[0] in _VENDOR_WORDS:
        words = words[1:]
    return " ".join(words)


def is_mig_slice(name: str) -> bool:
    text = unicodedata.normalize("NFKC", name).lower()
    return bool(_MIG_PROFILE.search(text)) or "mig" in _WORDS.findall(text)


# --- tables -----------------------------------------------------------------------

# Plain GPU names (1 GPU each). Sources: nvidia-smi product names ("NVIDIA H100 80GB
# HBM3" is the SXM5 part; the PCIe part reports "NVIDIA H100 PCIe"), RunPod gpuTypes ids,
# vast.ai gpu_name values, TensorDock v0 names / v2 display names, Lambda's
# gpu_description ("H100 (80 GB SXM5)"), Akash model+ram+interface (built by the adapter).
_GPU_ALIASES: Mapping[str, tuple[str, ...]] = {
    "H200": (
        # A bare "H200" is the SXM part in every catalog we read; the PCIe "H200 NVL"
        # is a different card and deliberately absent (unknown).
        "H200", "H200 SXM", "H200 SXM5", "H200 141GB", "H200 SXM 141GB",
        "H200 SXM5 141GB", "H200 141GB SXM5", "H200 141GB HBM3e", "H200-SXM5-141GB",
    ),
    "H100-SXM": (
        "H100 SXM", "H100 SXM5", "H100 SXM 80GB", "H100 SXM5 80GB", "H100 80GB SXM",
        "H100 80GB SXM5", "H100 80GB HBM3", "H100 SXM5 80GB HBM3", "H100-SXM5-80GB",
    ),
    "H100-PCIE": (
        "H100 PCIe", "H100 PCIe 80GB", "H100 80GB PCIe", "H100 80GB HBM2e", "H100-PCIE-80GB",
    ),
    "H100-NVL": ("H100 NVL", "H100 NVL 94GB", "H100 94GB NVL", "H100-NVL-94GB"),
    "A100-SXM-80GB": (
        "A100-SXM4-80GB", "A100 SXM4 80GB", "A100 80GB SXM4", "A100 SXM 80GB",
        "A100 80GB SXM",
    ),
    "A100-SXM-40GB": (
        "A100-SXM4-40GB", "A100 SXM4 40GB", "A100 40GB SXM4", "A100 SXM 40GB",
        "A100 40GB SXM",
    ),
    "A100-PCIE-40GB": ("A100-PCIE-40GB", "A100 PCIe 40GB", "A100 40GB PCIe"),
    "A100-PCIE-80GB": ("A100 80GB PCIe", "A100 PCIe 80GB", "A100-PCIE-80GB"),
    "L40S": ("L40S", "L40S 48GB", "L40S PCIe 48GB", "L40S 48GB PCIe", "L40S-PCIE-48GB"),
    "L4": ("L4", "L4 24GB", "L4 PCIe 24GB", "L4 24GB PCIe", "L4-PCIE-24GB"),
    # Not "A10G": AWS's A10G is a different SKU (lower clocks) and stays unknown.
    "A10": ("A10", "A10 24GB", "A10 PCIe 24GB", "A10 24GB PCIe", "A10-PCIE-24GB"),
    "RTX-4090": (
        "RTX 4090", "GeForce RTX 4090", "RTX 4090 24GB", "GeForce RTX 4090 24GB",
        "RTX 4090 PCIe 24GB", "RTX 4090 24GB PCIe", "GeForce RTX 4090 PCIe 24GB",
        "geforcertx4090-pcie-24gb",
    ),
    "RTX-5090": (
        "RTX 5090", "GeForce RTX 5090", "RTX 5090 32GB", "GeForce RTX 5090 32GB",
        "RTX 5090 PCIe 32GB", "RTX 5090 32GB PCIe", "GeForce RTX 5090 PCIe 32GB",
        "geforcertx5090-pcie-32gb",
    ),
    "MI300X": (
        "MI300X", "Instinct MI300X", "MI300X OAM", "Instinct MI300X OAM", "MI300X 192GB",
        "MI300X OAM 192GB", "MI300X 192GB OAM",
    ),
}  # fmt: skip

# Instance SKUs: (model, GPUs per instance). Sources: Azure ND/NC/NV-series docs
# (learn.microsoft.com/azure/virtual-machines/sizes), AWS EC2 accelerated-computing
# instance types, GCP accelerator-optimized machine types, OCI bare-metal/VM GPU shapes.
# Fractional-GPU SKUs (Azure NV6ads_A10_v5 ...) are absent on purpose: unknown.
_AWS_SMALL_SIZES = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")
_INSTANCE_SKUS: Mapping[str, tuple[str, int]] = {
    # Azure
    "Standard_ND96isr_H100_v5": ("H100-SXM", 8),
    "Standard_ND96isr_H200_v5": ("H200", 8),
    "Standard_NC40ads_H100_v5": ("H100-NVL", 1),
    "Standard_NCC40ads_H100_v5": ("H100-NVL", 1),
    "Standard_NC80adis_H100_v5": ("H100-NVL", 2),
    "Standard_ND96asr_v4": ("A100-SXM-40GB", 8),
    "Standard_ND96amsr_A100_v4": ("A100-SXM-80GB", 8),
    "Standard_NC24ads_A100_v4": ("A100-PCIE-80GB", 1),
    "Standard_NC48ads_A100_v4": ("A100-PCIE-80GB", 2),
    "Standard_NC96ads_A100_v4": ("A100-PCIE-80GB", 4),
    "Standard_ND96is_MI300X_v5": ("MI300X", 8),
    "Standard_NV36ads_A10_v5": ("A10", 1),
    "Standard_NV72ads_A10_v5": ("A10", 2),
    # AWS
    "p5.48xlarge": ("H100-SXM", 8),
    "p5.4xlarge": ("H100-SXM", 1),
    "p5e.48xlarge": ("H200", 8),
    "p5en.48xlarge": ("H200", 8),
    "p4d.24xlarge": ("A100-SXM-40GB", 8),
    "p4de.24xlarge": ("A100-SXM-80GB", 8),
    **{f"g6.{size}": ("L4", 1) for size in _AWS_SMALL_SIZES},
    "g6.12xlarge": ("L4", 4),
    "g6.24xlarge": ("L4", 4),
    "g6.48xlarge": ("L4", 8),
    **{f"g6e.{size}": ("L40S", 1) for size in _AWS_SMALL_SIZES},
    "g6e.12xlarge": ("L40S", 4),
    "g6e.24xlarge": ("L40S", 4),
    "g6e.48xlarge": ("L40S", 8),
    # GCP
    **{f"a3-highgpu-{n}g": ("H100-SXM", n) for n in (1, 2, 4, 8)},
    "a3-megagpu-8g": ("H100-SXM", 8),
    "a3-edgegpu-8g": ("H100-SXM", 8),
    "a3-ultragpu-8g": ("H200", 8),
    **{f"a2-highgpu-{n}g": ("A100-SXM-40GB", n) for n in (1, 2, 4, 8)},
    "a2-megagpu-16g": ("A100-SXM-40GB", 16),
    **{f"a2-ultragpu-{n}g": ("A100-SXM-80GB", n) for n in (1, 2, 4, 8)},
    **{f"g2-standard-{v}": ("L4", 1) for v in (4, 8, 12, 16, 32)},
    "g2-standard-24": ("L4", 2),
    "g2-standard-48": ("L4", 4),
    "g2-standard-96": ("L4", 8),
    # OCI
    "BM.GPU.H100.8": ("H100-SXM", 8),
    "BM.GPU.H200.8": ("H200", 8),
    "BM.GPU.A100-v2.8": ("A100-SXM-80GB", 8),
    "BM.GPU4.8": ("A100-SXM-40GB", 8),
    "BM.GPU.L40S.4": ("L40S", 4),
    "BM.GPU.L40S-NC.4": ("L40S", 4),
    "BM.GPU.MI300X.8": ("MI300X", 8),
    "VM.GPU.A10.1": ("A10", 1),
    "VM.GPU.A10.2": ("A10", 2),
    "BM.GPU.A10.4": ("A10", 4),
}  # fmt: skip

# OCI price-list part names ("<prefix> - Compute - GPU - <tail>", priced per GPU-hour).
# The tail alone is ambiguous in general ("H100"), but OCI sells one form factor per tail:
# H100 = BM.GPU.H100.8 (SXM5), "A100 - v2" = BM.GPU.A100-v2.8 (SXM4 80GB).
_OCI_PART_TAILS: Mapping[str, str] = {
    "H100": "H100-SXM",
    "H200": "H200",
    "A100 - v2": "A100-SXM-80GB",
    "L40S": "L40S",
    "A10": "A10",
    "MI300X": "MI300X",
}
_OCI_PREFIXES = ("Oracle Cloud Infrastructure - Compute - GPU - ", "OCI - Compute - GPU - ")

# GCP Cloud Billing SKU descriptions: "<gpu> GPU running in <region>" (and the Spot form
# "... GPU attached to Spot Preemptible VMs running in ..."). GCP sells one form factor
# per name: "Tesla A100" = a2-highgpu (SXM4 40GB), "A100 80GB" = a2-ultragpu (SXM4 80GB),
# "H100 80GB" = a3 (SXM5).
_GCP_GPU_NAMES: Mapping[str, str] = {
    "Nvidia Tesla A100": "A100-SXM-40GB",
    "Nvidia Tesla A100 80GB": "A100-SXM-80GB",
    "Nvidia A100 80GB": "A100-SXM-80GB",
    "Nvidia H100 80GB": "H100-SXM",
    "Nvidia H100 80GB Mega": "H100-SXM",
    "Nvidia H200 141GB": "H200",
    "Nvidia L4": "L4",
}
_GCP_DESCRIPTION = re.compile(
    r"^(?P<gpu>.+?) gpu (?:attached to spot preemptible vms )?running in (?P<region>.+)$"
)
# Lambda instance type names: gpu_<n>x_<gpu> (e.g. gpu_8x_h100_sxm5).
_LAMBDA_INSTANCE = re.compile(r"^gpu (?P<n>[0-9]{1,3}) x (?P<gpu>.+)$")


def _build_tables() -> tuple[dict[str, GpuMatch], dict[str, ModelId], dict[str, GpuMatch]]:
    direct: dict[str, GpuMatch] = {}
    spellings: dict[str, GpuMatch] = {}

    def put(key: str, match: GpuMatch, source: str) -> None:
        if not key:
            raise AssertionError(f"empty key for {source!r}")
        previous = direct.setdefault(key, match)
        if previous != match:  # two tables claim one key: a bug in this file
            raise AssertionError(f"{source!r} maps to {previous} and {match}")
        spellings[source] = match

    for model, aliases in _GPU_ALIASES.items():
        for alias in aliases:
            put(canonical_key(alias), GpuMatch(ModelId(model), 1), alias)
    for sku, (model, gpus) in _INSTANCE_SKUS.items():
        put(canonical_key(sku), GpuMatch(ModelId(model), gpus), sku)
    for tail, model in _OCI_PART_TAILS.items():
        for prefix in (*_OCI_PREFIXES, "Compute - GPU - "):
            put(canonical_key(prefix + tail), GpuMatch(ModelId(model), 1), prefix + tail)
    gcp = {canonical_key(name): ModelId(model) for name, model in _GCP_GPU_NAMES.items()}
    for match in (*direct.values(), *(GpuMatch(m, 1) for m in gcp.values())):
        if match.model not in MODELS:
            raise AssertionError(f"table names unregistered model {match.model}")
    return direct, gcp, spellings


_DIRECT, _GCP, _SPELLINGS = _build_tables()

# Every spelling in the tables above (as written there) and what it maps to; GCP SKU
# descriptions and Lambda instance names are matched by pattern and not listed.
KNOWN_NAMES: Mapping[str, GpuMatch] = MappingProxyType(_SPELLINGS)


def normalise(name: str) -> GpuMatch:
    """Map a provider's GPU / instance / SKU string to (model, GPUs it names).

    Raises :class:`MigSliceName` for a MIG slice and
    :class:`~feeds.errors.UnknownGpuName` for anything not in the tables.
    """
    if is_mig_slice(name):
        raise MigSliceName(name)
    key = canonical_key(name)
    match = _DIRECT.get(key)
    if match is not None:
        return match
    gcp = _GCP_DESCRIPTION.match(key)
    if gcp is not None and gcp["gpu"] in _GCP:
        return GpuMatch(_GCP[gcp["gpu"]], 1)
    lam = _LAMBDA_INSTANCE.match(key)
    if lam is not None:
        inner = _DIRECT.get(lam["gpu"])
        count = int(lam["n"])
        if inner is not None and inner.gpus == 1 and 1 <= count <= 64:
            return GpuMatch(inner.model, count)
    raise UnknownGpuName(name)
