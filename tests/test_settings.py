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
        "FLIGHTLINE_REPLAY_YEAR": "off",
        "FLIGHTLINE_ZONE_FEATURES": "curated",
    }
    s = Settings.from_env(env)
    assert s.root == str(tmp_path / "lake")
    assert s.spark_master == "spark://127.0.0.1:7077"
    assert s.s3_endpoint_url == "http://127.0.0.1:5000"
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
        ("FLIGHTLINE_ZONE_RAW", "a/b", "one folder name"),
        ("FLIGHTLINE_SERVE_PORT", "0", "greater than or equal to 1"),
        ("FLIGHTLINE_SERVE_WORKERS", "two", "valid integer"),
        ("FLIGHTLINE_RETRAIN_AUC_DROP", "1.5", "less than or equal to 1"),
        ("FLIGHTLINE_COST_LOCAL_HOURLY_USD", "-1", "greater than or equal to 0"),
        ("FLIGHTLINE_COST_LOCAL_HOURLY_USD", "inf", "finite number"),
        ("FLIGHTLINE_PREDICTION_LOG", "maybe", "'on' or 'off'"),
        ("FLIGHTLINE_K8S_IMAGE_PULL_POLICY", "Sometimes", "'Always', 'IfNotPresent' or 'Never'"),
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


def test_an_empty_value_means_the_default_except_where_empty_means_none():
    s = Settings.from_env({"FLIGHTLINE_SPARK_MASTER": "", "FLIGHTLINE_K8S_DATA_PVC": "",
                           "FLIGHTLINE_SPOT_SIMULATE_INTERRUPTIONS": "0"})
    assert s.spark_master == "local[2]" and s.k8s_data_pvc == "" and s.spot_simulate_interruptions == 0


def test_settings_built_in_code_ignore_the_environment(monkeypatch):
    """Only from_env reads FLIGHTLINE_* (the edges); Settings(...) in code is what it says."""
    monkeypatch.setenv("FLIGHTLINE_SPARK_MASTER", "spark://elsewhere:7077")
    assert Settings().spark_master == "local[2]"
    assert Settings.from_env().spark_master == "spark://elsewhere:7077"
    with pytest.raises(SettingsError, match="FLIGHTLINE_SERVE_PORT=0"):
        Settings().with_overrides(serve_port=0)


def test_deployment_settings_live_with_the_dags():
    from flightline_airflow.deployment import Deployment

    d = Deployment.from_env({"FLIGHTLINE_SCHEDULE": "30 3 * * *", "FLIGHTLINE_K8S_STEPS": "all"})
    assert d.schedule == "30 3 * * *" and "build_features" in d.pod_steps()
    for var, value, needle in [("FLIGHTLINE_SCHEDULE", "nightly", "5-field cron"),
                               ("FLIGHTLINE_SCHEDULE", "off", "5-field cron"),
                               ("FLIGHTLINE_TRAINING_SCHEDULE", "weekly", "5-field cron or off"),
                               ("FLIGHTLINE_NOTIFY", "pigeon", "expected log, email")]:
        with pytest.raises(SettingsError, match=f"{var}={value!r}: .*{needle}"):
            Deployment.from_env({var: value})
    from flightline_airflow import RETRAIN_ASSET

    # training: retrain requests and the weekly run, or retrain requests only
    weekly = Deployment.from_env({}).training_timetable(RETRAIN_ASSET)
    assert type(weekly).__name__ == "AssetOrTimeSchedule"
    assert Deployment.from_env({"FLIGHTLINE_TRAINING_SCHEDULE": "off"}).training_timetable(
        RETRAIN_ASSET) is RETRAIN_ASSET
    with pytest.raises(SettingsError, match="decide_promotion cannot run as a pod"):
        Deployment.from_env({"FLIGHTLINE_K8S_STEPS": "build_features,decide_promotion"}).pod_steps()
    with pytest.raises(SettingsError, match="K8S_DATA_PVC is empty"):
        d.pod_steps(Settings.from_env({"FLIGHTLINE_K8S_DATA_PVC": ""}))


def test_no_module_reads_flightline_variables_but_the_settings():
    """FLIGHTLINE_* is read in one place (tasks/settings.py's build); others get Settings or
    Deployment. Writing them (a subprocess's environment) is fine."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    reads = re.compile(r"(environ\.get\(|getenv\()[\"']FLIGHTLINE_|environ\[[\"']FLIGHTLINE_\w+[\"']\](?!\s*=)")
    offenders = [f"{p.relative_to(root)}:{i}" for d in ("tasks", "plugins", "dags", "infra")
                 for p in (root / d).rglob("*.py") for i, line in enumerate(p.read_text().splitlines(), 1)
                 if reads.search(line)]
    assert offenders == []
