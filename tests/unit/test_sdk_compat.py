"""The one private SDK API left (platforms/sdk_compat.py): guarded by version, loud when the SDK moves on."""

from __future__ import annotations

import logging

import pytest

from crossposter.platforms import sdk_compat


def test_the_installed_mastodon_py_is_one_the_hook_was_checked_with() -> None:
    """Fails on a Mastodon.py upgrade: read its casting code again, then widen MASTODON_PY_TESTED."""
    found = sdk_compat.mastodon_py_version()
    assert sdk_compat.mastodon_version_tested(found), (
        f"Mastodon.py {found} is outside {sdk_compat.MASTODON_PY_TESTED}: check `{sdk_compat.MASTODON_CAST}` "
        "in its mastodon/internals.py and the backup reader's peer tests, then widen the range")
    from mastodon import Mastodon

    assert callable(getattr(Mastodon, sdk_compat.MASTODON_CAST, None))


def test_the_hook_is_applied_to_one_instance_only() -> None:
    from mastodon import Mastodon

    api = Mastodon(api_base_url="https://mastodon.example", mastodon_version="4.3.0", version_check_mode="none")
    other = Mastodon(api_base_url="https://mastodon.example", mastodon_version="4.3.0", version_check_mode="none")
    assert sdk_compat.mastodon_plain_json(api) is True
    answer = {"id": "1", "created_at": "2026-11-28T10:00:00.000Z"}
    assert getattr(api, sdk_compat.MASTODON_CAST)(answer) == (answer, None)
    assert getattr(other, sdk_compat.MASTODON_CAST) != getattr(api, sdk_compat.MASTODON_CAST)


def test_an_sdk_without_the_method_is_said_and_left_alone(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(sdk_compat, "_warned", set())

    class Renamed:
        pass

    api = Renamed()
    with caplog.at_level(logging.WARNING, logger="crossposter.platforms"):
        assert sdk_compat.mastodon_plain_json(api, found=(9, 0)) is False
    assert not hasattr(api, sdk_compat.MASTODON_CAST)
    assert "Mastodon.py 9.0 is outside" in caplog.text and "answers stay typed" in caplog.text


def test_the_backup_reader_refuses_typed_answers_rather_than_misread_them() -> None:
    from crossposter.backup.mastodon import MastodonReader
    from crossposter.platforms.base import RejectedError

    class TypedAdapter:  # a Mastodon.py without the casting method: answers typed, `plain_json` False
        instance = "https://mastodon.example"
        plain_json = False

        def call(self, action: str, method: str, *args: object, **kwargs: object) -> dict:
            return {"id": "1", "acct": "me"}

    with pytest.raises(RejectedError, match="typed answers the backup cannot read"):
        MastodonReader(adapter=TypedAdapter()).account()  # type: ignore[arg-type]
    TypedAdapter.plain_json = True  # type: ignore[assignment]
    assert MastodonReader(adapter=TypedAdapter()).account()["id"] == "1"  # type: ignore[arg-type]
