from cvbench.harness.runner import DEFAULT_MAX_TOKENS, RunOptions, effective_max_tokens, parse_model_option
from cvbench.model_adapters.registry import recommended_max_tokens


def test_model_option_values_are_json_when_they_parse_else_text():
    assert parse_model_option("image_detail=high") == ("image_detail", "high")
    assert parse_model_option("batch_size=4") == ("batch_size", 4)
    assert parse_model_option("send_temperature=false") == ("send_temperature", False)
    assert parse_model_option(" path = /a=b") == ("path", " /a=b")
    for bad in ("novalue", "=x"):
        try:
            parse_model_option(bad)
        except ValueError as exc:
            assert "KEY=VALUE" in str(exc)
        else:
            raise AssertionError(bad)


def test_max_tokens_explicit_else_alias_recommendation_else_default():
    assert effective_max_tokens(RunOptions(model="random", max_tokens=7)) == 7
    assert effective_max_tokens(RunOptions(model="random")) == DEFAULT_MAX_TOKENS
    recommended = recommended_max_tokens("gemini-pro")
    assert recommended is not None and recommended != DEFAULT_MAX_TOKENS
    assert effective_max_tokens(RunOptions(model="gemini-pro")) == recommended
