"""Distillation in training (`train.py --teacher`): the soft-target loss and the frozen teacher."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from optical_memory.training.checkpoint import save_checkpoint  # noqa: E402
from optical_memory.training.model import CellReader, ReaderConfig  # noqa: E402
from optical_memory.training.train import load_teacher, soft_loss  # noqa: E402


def test_the_soft_loss_is_zero_only_where_the_student_agrees_with_the_teacher() -> None:
    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(4, 10, 759, generator=generator)
    assert soft_loss(teacher.clone(), teacher, 2.0).item() == pytest.approx(0.0, abs=1e-5)
    assert soft_loss(teacher + 1.0, teacher, 2.0).item() == pytest.approx(0.0, abs=1e-5)  # a shift is the same softmax
    other = torch.randn(4, 10, 759, generator=generator)
    assert soft_loss(other, teacher, 2.0).item() > 0.1


def test_descending_the_soft_loss_brings_the_student_to_the_teachers_choices() -> None:
    generator = torch.Generator().manual_seed(1)
    teacher = (torch.randn(2, 5, 759, generator=generator) * 4).requires_grad_()
    student = torch.zeros(2, 5, 759, requires_grad=True)
    optimizer = torch.optim.SGD([student], lr=50.0)
    first = soft_loss(student, teacher, 2.0).item()
    for _ in range(200):
        optimizer.zero_grad()
        loss = soft_loss(student, teacher, 2.0)
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 10
    assert torch.equal(student.argmax(-1), teacher.argmax(-1))
    assert teacher.grad is None  # the teacher's logits are targets: no gradient flows into the teacher


def test_the_teacher_is_loaded_frozen_with_its_own_model_arguments(tmp_path: Path) -> None:
    cfg = ReaderConfig(d_embed=32, n_blocks=2, version=2, expand=1, attn_dim=16)
    save_checkpoint(tmp_path / "teacher.pt", CellReader(cfg))
    student = ReaderConfig(d_embed=16, n_blocks=1, version=2, expand=1, attn_dim=8)
    teacher = load_teacher(str(tmp_path / "teacher.pt"), torch.device("cpu"), student)
    assert teacher.cfg == cfg
    assert not teacher.training
    assert not any(parameter.requires_grad for parameter in teacher.parameters())


def test_a_teacher_of_another_alphabet_is_refused_by_name(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "teacher.pt", CellReader(ReaderConfig(n_classes=500, d_embed=16, n_blocks=1)))
    with pytest.raises(SystemExit, match="n_classes is 500, the student's 759"):
        load_teacher(str(tmp_path / "teacher.pt"), torch.device("cpu"), ReaderConfig(d_embed=16, n_blocks=1))


def test_a_reader_with_a_block_fewer_starts_as_its_teacher_without_that_block(tmp_path: Path) -> None:
    from optical_memory.training.train import init_matching

    teacher = CellReader(ReaderConfig(d_embed=32, n_blocks=3, version=2, expand=1, attn_dim=16))
    save_checkpoint(tmp_path / "teacher.pt", teacher)
    student = CellReader(ReaderConfig(d_embed=32, n_blocks=2, version=2, expand=1, attn_dim=16))
    copied = init_matching(student, torch.load(tmp_path / "teacher.pt", weights_only=True))
    assert copied == len(student.state_dict())
    for name, tensor in student.state_dict().items():
        assert torch.equal(tensor, teacher.state_dict()[name]), name
    narrower = CellReader(ReaderConfig(d_embed=16, n_blocks=2, version=2, expand=1, attn_dim=16))
    before = {name: tensor.clone() for name, tensor in narrower.state_dict().items()}
    copied = init_matching(narrower, torch.load(tmp_path / "teacher.pt", weights_only=True))
    assert copied < len(before)  # tensors of another shape are left as they were
    assert torch.equal(narrower.state_dict()["embed.weight"], before["embed.weight"])
