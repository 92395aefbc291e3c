"""load_tokenizer: local paths against hub ids."""
import pytest

from rankkit.errors import UserError
from rankkit.tokenization import load_tokenizer


def test_missing_local_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        load_tokenizer(str(tmp_path / "absent"))


@pytest.mark.parametrize("hub_id", ["openai-community/gpt2", "EleutherAI/pythia-1.4b"])
def test_hub_ids_with_owner_or_dots_reach_the_hub_loader(hub_id, monkeypatch):
    """Owner-prefixed and dotted hub ids are names, not paths: they go to AutoTokenizer.from_pretrained."""
    import transformers

    asked = []

    def fake(name, **kwargs):
        asked.append((name, kwargs.get("local_files_only", False)))
        return "tokenizer"

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    assert load_tokenizer(hub_id) == "tokenizer"
    assert asked == [(hub_id, True)]  # the local cache is tried first
