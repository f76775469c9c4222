import pytest
import torch

from vitseg.errors import VitsegError
from vitseg.models import (
    BF16_CPU_FLAGS,
    MODELS,
    amx_available,
    autocast_context,
    bf16_cpu_flags,
    bf16_decision,
    cpu_flags,
    create_model,
    predict_logits,
    prepare_model,
    select_device,
    use_bf16,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: tiny models run faster, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize(
    ("arch", "in_channels", "classes"), [("unet", 10, 3), ("segformer", 10, 2), ("segformer", 4, 2)]
)
def test_forward_backward(arch, in_channels, classes):
    torch.manual_seed(0)
    model = create_model(arch, in_channels=in_channels, classes=classes)
    x = torch.randn(1, in_channels, 64, 64)
    out = model(x)
    assert out.shape == (1, classes, 64, 64)
    out.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
    assert model.meta["arch"] == arch and model.meta["in_channels"] == in_channels


def test_defaults_follow_papers():
    unet = create_model("unet", in_channels=10)
    seg = create_model("segformer", in_channels=10)
    assert unet.meta["classes"] == 3 and unet.meta["encoder"] == "resnet34"
    assert seg.meta["classes"] == 2 and seg.meta["encoder"] == "mit_b0"
    # Gallwey: two 50% dropout layers
    drops = [m.p for m in unet.feature_dropout]
    assert drops == [0.5, 0.5]
    assert seg.head_dropout.p == pytest.approx(0.1)


def test_unet_dropout_active_only_in_training():
    torch.manual_seed(0)
    model = create_model("unet", in_channels=3, encoder="resnet18")
    x = torch.randn(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


def test_unknown_arch_lists_names():
    with pytest.raises(KeyError, match=r"unknown model architecture 'deeplab'.*segformer.*unet"):
        create_model("deeplab", in_channels=3)
    with pytest.raises(VitsegError, match="unknown model"):
        create_model("deeplab", in_channels=3)
    assert set(MODELS) == {"unet", "segformer"}


def test_unknown_model_error_lives_in_errors_and_is_re_exported():
    import vitseg.errors
    import vitseg.models

    assert vitseg.models.UnknownModelError is vitseg.errors.UnknownModelError
    assert "UnknownModelError" in vitseg.models.__all__
    with pytest.raises(vitseg.errors.UnknownModelError) as info:
        create_model("deeplab", in_channels=3)
    assert str(info.value).startswith("unknown model architecture 'deeplab'")  # not quoted


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"classes": 1}, "classes must be >= 2"),
        ({"dropout": 1.0}, "dropout must be"),
        ({"in_channels": 0}, "in_channels must be"),
    ],
)
def test_bad_arguments(kw, match):
    args = {"in_channels": 3, **kw}
    with pytest.raises(VitsegError, match=match):
        create_model("segformer", **args)


def test_size_not_multiple_of_32_is_error_but_predict_logits_pads():
    model = create_model("segformer", in_channels=3).eval()
    x = torch.randn(2, 3, 40, 50)
    with pytest.raises(VitsegError, match="multiples of 32"):
        model(x)
    out = predict_logits(model, x, bf16=False)
    assert out.shape == (2, 2, 40, 50) and out.dtype == torch.float32


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 amx_bf16 amx_tile avx512f", True),  # Intel Sapphire Rapids (AMX)
        ("fpu sse2 avx512f avx512_bf16 avx512_vnni", True),  # AMD Zen 4 (AVX-512 BF16, no AMX)
        ("fpu sse2 avx2 avx512f", False),  # AVX-512 without bf16
        ("fpu sse2 avx2", False),
    ],
)
def test_bf16_auto_by_cpu_flags(tmp_path, flags, expected):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor : 0\nflags\t\t: {flags}\n\nprocessor : 1\nflags\t\t: {flags}\n")
    use, reason = bf16_decision("cpu", "auto", cpuinfo=str(info))
    assert use is expected
    assert reason.startswith("bf16" if expected else "fp32")
    if expected:
        assert any(f in reason for f in BF16_CPU_FLAGS)
    # an explicit choice wins over the flags
    assert bf16_decision("cpu", not expected, cpuinfo=str(info))[0] is (not expected)


def test_bf16_decision_rejects_bad_values():
    with pytest.raises(VitsegError, match="'bf16' must be"):
        bf16_decision("cpu", "yes")  # type: ignore[arg-type]


def test_amx_flag_parsing(tmp_path):
    cpu_flags.cache_clear()
    yes = tmp_path / "yes"
    yes.write_text("processor : 0\nflags\t\t: fpu sse2 amx_bf16 amx_tile\n")
    no = tmp_path / "no"
    no.write_text("processor : 0\nflags\t\t: fpu sse2 avx512f\n")
    assert amx_available(str(yes)) is True
    assert amx_available(str(no)) is False
    assert amx_available(str(tmp_path / "missing")) is False


def test_device_helpers():
    cpu = select_device("cpu")
    assert cpu.type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert use_bf16(cpu, False) is False and use_bf16(cpu, True) is True
    assert use_bf16(cpu, "auto") == bool(bf16_cpu_flags())
    with autocast_context(cpu, bf16=True):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.bfloat16
    with autocast_context(cpu, bf16=False):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32
    model = prepare_model(create_model("segformer", in_channels=3), cpu, bf16=True)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_requested_without_gpu():
    with pytest.raises(VitsegError, match="no CUDA GPU"):
        select_device("cuda")


@pytest.mark.parametrize("bad", ["tpu", "gpu", "mps", "cuda:x"])
def test_select_device_names_the_choices(bad):
    with pytest.raises(VitsegError, match="'auto', 'cpu' or 'cuda'"):
        select_device(bad)
