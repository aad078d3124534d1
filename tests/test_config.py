import pytest

from lstmcast.config import RunConfig, make_config, read_toml
from lstmcast.errors import ConfigError


def test_make_config_parses_lists_and_keeps_defaults():
    config = make_config({"layers": "64, 32", "targets": "a,b"})
    assert config.layers == (64, 32)
    assert config.targets == ("a", "b")
    assert config.lookback == RunConfig().lookback


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"lookback": 0}, "'lookback' parameter must be an int >= 1. Got 0"),
        ({"optimizer": "adagrad"}, "'optimizer' parameter must be one of adam, adamw"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "must be < 1"),
        ({"clip_norm": -1.0}, "'clip_norm'"),
        ({"bogus": 1}, "unknown option 'bogus'"),
        ({"layers": "64,x"}, "comma-separated list of ints"),
        ({"val_start": "2020-01-01"}, "given together"),
    ],
)
def test_bad_values_raise_config_error(values, match):
    with pytest.raises(ConfigError, match=match):
        make_config(values)


def test_toml_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('model = "stacked"\nepochs = 3\nlayers = [16, 8]\n')
    config = make_config(read_toml(path))
    assert (config.model, config.epochs, config.layers) == ("stacked", 3, (16, 8))
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(bad)


def test_panel_options_are_checked_where_they_are_given():
    with pytest.raises(ConfigError, match="'static' option needs 'id_col'"):
        make_config({"static": "region"})
    with pytest.raises(ConfigError, match="'id_embedding' option needs 'id_col'"):
        make_config({"id_embedding": 4})
    with pytest.raises(ConfigError, match="Column 'promo' is in both 'covariates' and"):
        make_config({"covariates": "promo", "future_covariates": "promo"})
    with pytest.raises(ConfigError, match="'calendar' option"):
        make_config({"calendar": "hours"})
    assert make_config({"calendar": "Month, hour"}).calendar == "month,hour"
    assert make_config({"holidays": "us"}).holidays == "US"
