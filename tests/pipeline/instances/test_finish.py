"""The launcher's end of the instances stage: intermediates a previous step must have written."""

from __future__ import annotations

import pytest

from ground.errors import UserError
from pipeline.instances import finish


@pytest.mark.parametrize("missing", ["buckets.json", "shards.json"])
def test_a_missing_intermediate_is_an_error_not_an_empty_list(tmp_path, missing):
    (tmp_path / "tmp").mkdir()
    for name in {"buckets.json", "shards.json"} - {missing}:
        (tmp_path / "tmp" / name).write_text("[]")
    with pytest.raises(UserError, match=f"{missing} is missing: a branch of the pipeline"):
        finish.finish(str(tmp_path), [], {}, None)
