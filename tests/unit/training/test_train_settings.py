"""The training step's own readers of its settings: a blank ``RECASSETS_TRAIN_ROW_WISE`` is the
default (it had read as no table split by rows, a silent change of the sharding plan), a name
that is no table is refused naming the variable (the planner refused it once the ranks ran),
and the rank and pod counts have upper bounds."""

from __future__ import annotations

import pytest

from recassets.training import distributed as DT
from recassets.training import k8s_job

IMAGE = "registry.example/recassets:1"


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_blank_row_wise_setting_is_the_default(blank: str):
    assert DT.row_wise_from_env({DT.ENV_ROW_WISE: blank}) == ("item_id",)


def test_row_wise_names_tables_or_none():
    assert DT.row_wise_from_env({}) == ("item_id",)
    assert DT.row_wise_from_env({DT.ENV_ROW_WISE: " item_id , user_id"}) == ("item_id", "user_id")
    assert DT.row_wise_from_env({DT.ENV_ROW_WISE: "None"}) == ()  # no table split by rows
    with pytest.raises(ValueError, match=r"RECASSETS_TRAIN_ROW_WISE='item_id,itemid': 'itemid'"):
        DT.row_wise_from_env({DT.ENV_ROW_WISE: "item_id,itemid"})
    with pytest.raises(ValueError, match=r"RECASSETS_TRAIN_ROW_WISE=',': no table"):
        DT.row_wise_from_env({DT.ENV_ROW_WISE: " , "})


def test_the_tables_the_setting_may_name_are_the_models():
    from recassets.training import data as D
    from recassets.training.settings import TABLES

    assert sorted(TABLES) == sorted(D.VOCABS)


@pytest.mark.parametrize("over", ["1025", "99999999999999999999999"])
def test_ranks_and_pods_over_their_bound_are_refused(over: str):
    with pytest.raises(ValueError, match=r"RECASSETS_TRAIN_PROCESSES=\d+: expected at most 1024"):
        DT.processes_from_env({DT.ENV_PROCESSES: over})
    with pytest.raises(ValueError, match=r"RECASSETS_TRAIN_NODES=\d+: expected at most 1024"):
        k8s_job.settings_from_env({k8s_job.ENV_IMAGE: IMAGE, k8s_job.ENV_NODES: over})


def test_ranks_and_pods_at_their_bound_pass():
    assert DT.processes_from_env({DT.ENV_PROCESSES: "1024"}) == 1024
    env = {k8s_job.ENV_IMAGE: IMAGE, k8s_job.ENV_NODES: "1024"}
    assert k8s_job.settings_from_env(env).nodes == 1024
