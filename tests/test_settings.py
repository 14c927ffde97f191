from datetime import date

import pytest

from tasks.settings import Settings, SettingsError


def test_defaults_are_local_and_complete():
    s = Settings.from_env({})
    assert s.spark_master == "local[2]"
    assert s.replay_year == 2013
    assert not s.is_s3
    assert s.root.endswith("/data")
    assert s.partition("features", date(2013, 1, 15)) == f"{s.root}/features/dt=2013-01-15"


def test_every_field_is_overridable_from_the_environment(tmp_path):
    env = {
        "FLIGHTLINE_DATA_ROOT": str(tmp_path / "lake"),
        "FLIGHTLINE_SPARK_MASTER": "spark://127.0.0.1:7077",
        "FLIGHTLINE_S3_ENDPOINT_URL": "http://127.0.0.1:5000",
        "FLIGHTLINE_SCHEDULE": "30 3 * * *",
        "FLIGHTLINE_REPLAY_YEAR": "off",
        "FLIGHTLINE_ZONE_FEATURES": "curated",
    }
    s = Settings.from_env(env)
    assert s.root == str(tmp_path / "lake")
    assert s.spark_master == "spark://127.0.0.1:7077"
    assert s.s3_endpoint_url == "http://127.0.0.1:5000"
    assert s.schedule == "30 3 * * *"
    assert s.replay_year == 0
    assert s.zone("features") == f"{tmp_path}/lake/curated"
    assert s.zone("raw") == f"{tmp_path}/lake/raw"


def test_s3_root_keeps_its_uri():
    s = Settings.from_env({"FLIGHTLINE_DATA_ROOT": "s3://bucket/prefix/"})
    assert s.is_s3
    assert s.zone("landing") == "s3://bucket/prefix/landing"


@pytest.mark.parametrize(
    "var,value,needle",
    [
        ("FLIGHTLINE_DATA_ROOT", "s3://", "no bucket"),
        ("FLIGHTLINE_DATA_ROOT", "gs://bucket/x", "use a local folder"),
        ("FLIGHTLINE_REPLAY_YEAR", "twenty", "expected a year"),
        ("FLIGHTLINE_SPARK_MASTER", "mesos://x", "expected local[N]"),
        ("FLIGHTLINE_SCHEDULE", "nightly", "5-field cron"),
        ("FLIGHTLINE_ZONE_RAW", "a/b", "one folder name"),
    ],
)
def test_bad_values_name_the_variable(var, value, needle):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({var: value})
    assert var in str(err.value) and needle in str(err.value)


def test_unknown_zone_is_refused():
    with pytest.raises(SettingsError, match="unknown data zone 'gold'"):
        Settings.from_env({}).zone("gold")


def test_settings_travel_to_a_subprocess_as_variables(tmp_path):
    """What a Horovod worker gets in its config rebuilds the launcher's settings exactly."""
    s = Settings.from_env({
        "FLIGHTLINE_DATA_ROOT": str(tmp_path / "lake"), "FLIGHTLINE_REPLAY_YEAR": "off",
        "FLIGHTLINE_ZONE_MODELS": "registry", "FLIGHTLINE_SPARK_DRIVER_MEMORY": "6g",
        "FLIGHTLINE_CODE_VERSION": "abc123",
    })
    assert (s.spark_driver_memory, s.code_version, s.replay_year) == ("6g", "abc123", 0)
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env(Settings().to_env()) == Settings()
