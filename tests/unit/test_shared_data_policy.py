"""Tests that need ../shared/data skip on a machine without it, and fail where it is
required (CI sets TRADEWIND_REQUIRE_SHARED_DATA=1 in `.ci/run`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import conftest


def test_absent_data_skips_unless_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path)
    with pytest.raises(pytest.skip.Exception, match="optional test data"):
        conftest.shared_file("missing.parquet", required=False)
    with pytest.raises(pytest.fail.Exception, match="TRADEWIND_REQUIRE_SHARED_DATA=1"):
        conftest.shared_file("missing.parquet", required=True)
    (tmp_path / "there.parquet").write_bytes(b"")
    assert conftest.shared_file("there.parquet", required=True) == tmp_path / "there.parquet"


def test_ci_requires_the_shared_data() -> None:
    run = (conftest.PROJECT_ROOT / ".ci" / "run").read_text()
    assert f"{conftest.REQUIRE_SHARED_DATA_ENV}=1" in run
