"""Pure planning of the instances stage: groups per split."""

from __future__ import annotations

from collections import Counter

from pipeline.instances import plan


def test_validation_gets_its_share_of_groups():
    assert plan.groups_per_split(100, 0.01) == {plan.TRAINING: 100, plan.VALIDATION: 1}
    assert plan.groups_per_split(100, 0.2) == {plan.TRAINING: 100, plan.VALIDATION: 20}
    assert plan.groups_per_split(1, 0.0)[plan.VALIDATION] == 1  # never zero groups


def test_groups_hold_similar_document_counts_in_both_splits():
    ids = [f"doc-{i}" for i in range(20000)]
    groups = plan.groups_per_split(50, 0.1)
    per = {plan.TRAINING: Counter(), plan.VALIDATION: Counter()}
    for d in ids:
        split = plan.split_of(d, 0.1)
        per[split][plan.group_of(d, 7, groups[split])] += 1
    mean = {k: sum(c.values()) / len(c) for k, c in per.items()}
    assert len(per[plan.VALIDATION]) == 5 and len(per[plan.TRAINING]) == 50
    assert 0.8 < mean[plan.VALIDATION] / mean[plan.TRAINING] < 1.25
