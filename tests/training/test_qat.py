"""Quantisation-aware fine-tuning (training/qat.py) on a small RLFN: NNCF's fake quantisers sit where the
post-training twin's int8 layers are, a few distillation steps train them, a saved state reads back, and
OpenVINO converts the twin to an IR with FakeQuantize nodes and int8 weights on the body's convs only."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nncf")

from training import qat, rlfn  # noqa: E402 (after the skip: torch is a training package)
from training.export import int8_convs  # noqa: E402


@pytest.fixture(scope="module")
def small():
    """A 2-block, 8-feature x4 RLFN in the grid variant, its twin quantised on one 30x30 crop, and a crop."""
    torch.manual_seed(0)
    model = rlfn.RLFN(4, grid=True, feats=8, blocks=2).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    crop = np.random.default_rng(0).uniform(0, 255, (1, 3, 30, 30)).astype(np.float32)
    return model, qat.quantize(model, [crop], 4), torch.from_numpy(crop)


def test_it_keeps_the_float_layers_of_the_post_training_twin_in_float(small):
    twin = small[1]
    convs = int8_convs(qat.to_openvino(twin))
    assert {"block_1.c1_r", "block_2.c3_r", "block_2.c5"} <= convs
    assert not convs & {"conv_1", "conv_2", "upsampler.0"}  # conv_2: x4's searched float layer
    assert not [name for name in convs if ".esa." in name]


def test_a_few_steps_train_the_twin_and_it_converts_with_fake_quantize_nodes(small, tmp_path):
    import openvino as ov

    model, twin, crop = small
    twin.train()
    groups = qat.param_groups(twin, 1e-3, 1e-2)
    assert len(groups) > 1 and all(g["lr"] < 1e-2 * 1e3 for g in groups)  # ranges at their own rate
    opt = torch.optim.Adam(groups)
    before = {k: v.clone() for k, v in twin.state_dict().items()}
    losses = [qat.step(twin, model, opt, crop, torch.zeros(1, 3, 120, 120)) for _ in range(3)]
    assert all(np.isfinite(losses))
    changed = [k for k, v in twin.state_dict().items() if not torch.equal(v, before[k])]
    assert any("c1_r" in k for k in changed) and any("input_range" in k for k in changed)  # ranges learn too

    ov_model = qat.to_openvino(twin)
    assert [op for op in ov_model.get_ops() if op.get_type_name() == "FakeQuantize"]
    assert ov_model.input(0).get_partial_shape().to_string() == "[1,3,?,?]"
    ov.save_model(ov_model, tmp_path / "twin.xml", compress_to_fp16=True)
    compiled = ov.Core().compile_model(ov.Core().read_model(tmp_path / "twin.xml"), "CPU")
    with torch.no_grad():
        expected = twin.eval()(crop).numpy()
    assert compiled([crop.numpy()])[0].shape == expected.shape == (1, 3, 120, 120)


def test_a_saved_state_reads_back_as_the_same_twin(small):
    model, twin, crop = small
    twin.eval()
    again = qat.twin_from_state(model, twin.state_dict(), 4).eval()
    with torch.no_grad():
        assert torch.equal(again(crop), twin(crop))
