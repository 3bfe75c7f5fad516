"""The canonical GPU registry and the provider-name normaliser."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.errors import UnknownGpuName
from feeds.gpus import (
    KNOWN_NAMES,
    MODELS,
    GpuMatch,
    MigSliceName,
    Segment,
    canonical_key,
    is_mig_slice,
    normalise,
    spec,
)
from feeds.model import ModelId

REQUIRED_MODELS = {
    "H200",
    "H100-SXM",
    "H100-PCIE",
    "H100-NVL",
    "A100-SXM-80GB",
    "A100-PCIE-40GB",
    "A100-PCIE-80GB",
    "L40S",
    "L4",
    "A10",
    "RTX-4090",
    "RTX-5090",
    "MI300X",
}

# (provider string, model, GPUs the string names). Names from the shared fixtures, the
# providers' catalogs, nvidia-smi and instance-type documentation.
POSITIVE = [
    ("NVIDIA H100 80GB HBM3", "H100-SXM", 1),  # nvidia-smi / RunPod id of the SXM5 part
    ("H100 SXM", "H100-SXM", 1),  # vast.ai gpu_name (shared fixture)
    ("H100_SXM5", "H100-SXM", 1),
    ("H100 SXM5 80GB", "H100-SXM", 1),  # TensorDock v2 displayName (shared fixture)
    ("h100-sxm5-80gb", "H100-SXM", 1),  # TensorDock v0Name (shared fixture)
    ("H100 (80 GB SXM5)", "H100-SXM", 1),  # Lambda gpu_description (shared fixture)
    ("nvidia h100 80GB SXM5", "H100-SXM", 1),  # Akash model+ram+interface
    ("NVIDIA H100 PCIe", "H100-PCIE", 1),
    ("H100 PCIE", "H100-PCIE", 1),  # vast.ai
    ("H100 NVL", "H100-NVL", 1),
    ("NVIDIA H100 NVL", "H100-NVL", 1),
    ("NVIDIA H200", "H200", 1),
    ("A100-SXM4-80GB", "A100-SXM-80GB", 1),
    ("NVIDIA A100-SXM4-80GB", "A100-SXM-80GB", 1),  # RunPod id (shared list fixture)
    ("A100 SXM4 80GB", "A100-SXM-80GB", 1),
    ("A100 80GB PCIe", "A100-PCIE-80GB", 1),
    ("NVIDIA A100 80GB PCIe", "A100-PCIE-80GB", 1),  # RunPod id (shared fixture)
    ("NVIDIA A100-PCIE-40GB", "A100-PCIE-40GB", 1),  # nvidia-smi
    ("A100-SXM4-40GB", "A100-SXM-40GB", 1),
    ("L40S", "L40S", 1),
    ("NVIDIA L4", "L4", 1),
    ("A10", "A10", 1),
    ("RTX 4090", "RTX-4090", 1),
    ("NVIDIA GeForce RTX 4090", "RTX-4090", 1),
    ("geforcertx4090-pcie-24gb", "RTX-4090", 1),  # TensorDock v0 (shared fixture)
    ("NVIDIA GeForce RTX 4090 PCIe 24GB", "RTX-4090", 1),  # TensorDock v2 (shared fixture)
    ("RTX 5090", "RTX-5090", 1),
    ("AMD Instinct MI300X OAM", "MI300X", 1),
    ("MI300X", "MI300X", 1),
    # instance SKUs
    ("Standard_ND96isr_H100_v5", "H100-SXM", 8),  # Azure (shared fixture)
    ("Standard_ND96amsr_A100_v4", "A100-SXM-80GB", 8),
    ("Standard_NC40ads_H100_v5", "H100-NVL", 1),
    ("Standard_ND96is_MI300X_v5", "MI300X", 8),
    ("p5.48xlarge", "H100-SXM", 8),  # AWS (shared fixture)
    ("p5en.48xlarge", "H200", 8),  # AWS (shared fixture)
    ("p4d.24xlarge", "A100-SXM-40GB", 8),  # AWS (shared fixture)
    ("p4de.24xlarge", "A100-SXM-80GB", 8),
    ("g6.48xlarge", "L4", 8),
    ("g6e.xlarge", "L40S", 1),
    ("a2-ultragpu-8g", "A100-SXM-80GB", 8),  # GCP
    ("a3-highgpu-8g", "H100-SXM", 8),
    ("a3-megagpu-8g", "H100-SXM", 8),
    ("g2-standard-24", "L4", 2),
    ("BM.GPU.H100.8", "H100-SXM", 8),  # OCI
    ("BM.GPU.A100-v2.8", "A100-SXM-80GB", 8),
    ("VM.GPU.A10.2", "A10", 2),
    # provider catalog names
    ("Nvidia H100 80GB GPU running in Americas", "H100-SXM", 1),  # GCP SKU description
    ("Nvidia Tesla A100 GPU running in Americas", "A100-SXM-40GB", 1),  # shared fixture
    ("Nvidia Tesla A100 80GB GPU running in EMEA", "A100-SXM-80GB", 1),
    ("Nvidia H100 80GB GPU attached to Spot Preemptible VMs running in APAC", "H100-SXM", 1),
    ("Nvidia L4 GPU running in Americas", "L4", 1),
    ("Oracle Cloud Infrastructure - Compute - GPU - H100", "H100-SXM", 1),  # shared fixture
    ("OCI - Compute - GPU - H200", "H200", 1),  # shared fixture
    ("Compute - GPU - A100 - v2", "A100-SXM-80GB", 1),  # shared fixture
    ("gpu_8x_h100_sxm5", "H100-SXM", 8),  # Lambda instance name
    ("gpu_1x_h100_pcie", "H100-PCIE", 1),
    ("gpu_8x_a100_80gb_sxm4", "A100-SXM-80GB", 8),
]

# Unknown on purpose: ambiguous, different products, or not a GPU at all.
UNKNOWN = [
    "H100",  # SXM or PCIe?
    "NVIDIA H100",
    "A100",
    "A100 80GB",  # SXM4 or PCIe?
    "A100 SXM4",  # vast.ai's spelling for both 40 and 80 GB: needs gpu_ram
    "H200 NVL",  # the PCIe H200, a different card
    "A10G",  # AWS's A10 variant (g5), a different SKU
    "g5.xlarge",
    "RTX 4090 D",  # the China variant
    "RTX 4080",
    "L40",  # not L40S
    "H100T",
    "OCI - Compute - GPU - H100T",
    "Example GPU (40 GB SXM4)",  # Lambda's placeholder (shared fixture)
    "geforcertx3080-pcie-10gb",  # TensorDock v0 (shared fixture)
    "Nvidia Tesla T4 GPU running in Americas",
    "Standard_NV6ads_A10_v5",  # a sixth of an A10
    "gpu_1x_a100",  # Lambda: which A100?
    "gpu_8x_h100_sxm5gdr",  # unknown suffix; Lambda's gpu_description resolves it instead
    "H100 SXM NVL",
    "SXM H100",  # word order matters
    "",
    "   ",
    "nvidia",
]

MIG = [
    "1g.10gb",
    "H100 MIG 3g.40gb",
    "NVIDIA A100-SXM4-40GB MIG 1g.5gb",
    "7g.80gb",
    "1c.3g.40gb",
    "MIG",
]


@pytest.mark.parametrize(("name", "model", "gpus"), POSITIVE)
def test_known_names(name: str, model: str, gpus: int) -> None:
    assert normalise(name) == GpuMatch(ModelId(model), gpus)


@pytest.mark.parametrize("name", UNKNOWN)
def test_unknown_names_are_never_guessed(name: str) -> None:
    with pytest.raises(UnknownGpuName) as info:
        normalise(name)
    assert not isinstance(info.value, MigSliceName)
    assert info.value.name == name


@pytest.mark.parametrize("name", MIG)
def test_mig_slices_are_recognised_and_refused(name: str) -> None:
    assert is_mig_slice(name)
    with pytest.raises(MigSliceName):
        normalise(name)


def test_no_h100_variant_collapses_into_another() -> None:
    assert normalise("H100 NVL").model == "H100-NVL"
    assert normalise("H100 PCIe").model == "H100-PCIE"
    assert normalise("H100 SXM").model == "H100-SXM"
    # Every spelling containing NVL / PCIe maps to a model of that form factor.
    for spelling, match in KNOWN_NAMES.items():
        words = canonical_key(spelling).split()
        if "nvl" in words:
            assert match.model == "H100-NVL", spelling
        if "pcie" in words and match.model.startswith(("H100", "A100")):
            assert "PCIE" in match.model, spelling


def test_registry_holds_every_required_model_with_plausible_specs() -> None:
    assert set(MODELS) >= REQUIRED_MODELS
    for model, gpu in MODELS.items():
        assert gpu.model == model
        assert spec(model) is gpu
        assert gpu.vram_gb > 0
        assert gpu.fp16_tflops > 0 and gpu.bf16_tflops > 0
        assert date(2020, 1, 1) <= gpu.released <= date(2026, 12, 31)
    # Dense, not "with sparsity" (the datasheet headline is twice this).
    assert spec("H100-SXM").bf16_tflops == Decimal("989.4")
    assert spec("A100-SXM-80GB").fp16_tflops == Decimal("312")
    assert spec("MI300X").bf16_tflops == Decimal("1307.4")
    assert spec("H100-SXM").memory_type == "HBM3"
    assert spec("H200").vram_gb == 141
    assert spec("RTX-4090").segment is Segment.CONSUMER
    assert spec("L40S").segment is Segment.DATA_CENTRE


def test_spec_of_unknown_model_raises() -> None:
    with pytest.raises(UnknownGpuName):
        spec("H100")


def test_every_known_name_resolves_to_a_registered_model() -> None:
    assert len(KNOWN_NAMES) > 100
    for spelling, match in KNOWN_NAMES.items():
        assert normalise(spelling) == match
        assert match.model in MODELS
        assert match.gpus >= 1


# --- properties ---------------------------------------------------------------------

KNOWN = sorted(KNOWN_NAMES)
SEPARATORS = st.sampled_from([" ", "  ", "_", "-", "\t", " - "])


@st.composite
def respelled(draw: st.DrawFn) -> tuple[str, str]:
    """A known spelling, re-cased and with different separators / padding."""
    name = draw(st.sampled_from(KNOWN))
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    cased = "".join(c.upper() if f else c.lower() for c, f in zip(name, flips, strict=True))
    sep = draw(SEPARATORS)
    spaced = cased.replace(" ", sep).replace("_", sep)
    pad = draw(st.sampled_from(["", " ", "\n", "  "]))
    return name, f"{pad}{spaced}{pad}"


@settings(max_examples=300)
@given(respelled())
def test_normalisation_ignores_case_whitespace_and_separators(pair: tuple[str, str]) -> None:
    original, variant = pair
    assert normalise(variant) == KNOWN_NAMES[original]


@settings(max_examples=200)
@given(st.sampled_from(KNOWN), st.sampled_from([" NVL", "-nvl", " MIG 1g.10gb", " 3g.40gb"]))
def test_suffixes_that_change_the_product_are_never_absorbed(name: str, suffix: str) -> None:
    """No fuzzy matching: "<known name> NVL" is an NVL or unknown, never the base model;
    any name carrying a MIG profile is refused as MIG."""
    variant = name + suffix
    if "g." in suffix:
        with pytest.raises(MigSliceName):
            normalise(variant)
        return
    try:
        match = normalise(variant)
    except UnknownGpuName:
        return
    assert match.model == "H100-NVL", variant


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_unknown_gpu_name(text: str) -> None:
    try:
        match = normalise(text)
    except UnknownGpuName:
        return
    assert match.model in MODELS
