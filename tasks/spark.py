"""SparkSession for Flightline steps: local by default, a standalone cluster by setting the master.

``FLIGHTLINE_SPARK_MASTER=spark://host:7077`` runs the same step on a cluster unchanged; the data
root must then be a path every executor can reach (shared disk), as Spark reads and writes it.
``FLIGHTLINE_SPARK_MASTER=sc://127.0.0.1:15002`` sends the step to a warm Spark Connect server
(``make airflow`` starts one beside the local stack): no JVM start per task, the same DataFrame
code.
"""

from __future__ import annotations

import os
import sys

from tasks import raw_contract
from tasks.settings import Settings


def spark_session(settings: Settings, app_name: str = "flightline"):
    """Create (or reuse) a SparkSession configured for small daily partitions."""
    from pyspark.sql import SparkSession

    if settings.spark_master.startswith("sc://"):
        # Spark Connect: the server owns the JVM and its static settings; only session
        # settings travel with the client.
        return (
            SparkSession.builder.remote(settings.spark_master)
            .appName(app_name)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.adaptive.enabled", "true")
            .config("spark.sql.parquet.compression.codec", "snappy")
            .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
            .getOrCreate()
        )
    # Executors must run the same interpreter as the driver (UDF-free code still ships lambdas).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.parquet.compression.codec", "snappy")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=ERROR")
    )
    if settings.spark_master.startswith("spark://"):
        builder = builder.config("spark.executor.memory", "1g").config("spark.cores.max", "2")
    for key, value in kubernetes_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def kubernetes_conf(settings: Settings, env: dict | None = None) -> dict[str, str]:
    """Spark's Kubernetes mode, client deploy mode from the step's pod: that pod is the driver and
    ``k8s_spark_executors`` executor pods run the task image with the data volume mounted where
    the driver has it. The pod's own IP and name arrive through the downward API
    (``FLIGHTLINE_POD_IP``, ``FLIGHTLINE_POD_NAME``): executors connect back to the IP, and are
    owned by the driver pod so they go when it goes. Empty unless the master is ``k8s://``."""
    if not settings.spark_master.startswith("k8s://"):
        return {}
    env = os.environ if env is None else env
    conf = {
        "spark.submit.deployMode": "client",
        "spark.kubernetes.namespace": settings.k8s_namespace,
        "spark.kubernetes.container.image": settings.k8s_image,
        "spark.kubernetes.container.image.pullPolicy": settings.k8s_image_pull_policy,
        "spark.kubernetes.authenticate.driver.serviceAccountName": settings.k8s_service_account,
        "spark.executor.instances": str(max(1, settings.k8s_spark_executors)),
        "spark.executor.memory": "2g",
        "spark.executor.cores": "1",
        "spark.kubernetes.executor.request.cores": "1",
        "spark.kubernetes.executor.label.app.kubernetes.io/part-of": "flightline",
        "spark.driver.bindAddress": "0.0.0.0",
        "spark.driver.port": "7078",
        "spark.blockManager.port": "7079",
    }
    if env.get("FLIGHTLINE_POD_IP"):
        conf["spark.driver.host"] = env["FLIGHTLINE_POD_IP"]
    if env.get("FLIGHTLINE_POD_NAME"):
        conf["spark.kubernetes.driver.pod.name"] = env["FLIGHTLINE_POD_NAME"]
    if settings.k8s_env_secret:  # the same environment as the driver, by reference
        conf["spark.kubernetes.executor.secretKeyRef.AWS_ACCESS_KEY_ID"] = \
            f"{settings.k8s_env_secret}:AWS_ACCESS_KEY_ID"
        conf["spark.kubernetes.executor.secretKeyRef.AWS_SECRET_ACCESS_KEY"] = \
            f"{settings.k8s_env_secret}:AWS_SECRET_ACCESS_KEY"
    if settings.k8s_data_pvc:
        vol = "spark.kubernetes.executor.volumes.persistentVolumeClaim.data"
        conf[f"{vol}.options.claimName"] = settings.k8s_data_pvc
        conf[f"{vol}.mount.path"] = settings.k8s_data_mount
        conf[f"{vol}.mount.readOnly"] = "false"
    return conf


def _schema(columns):
    from pyspark.sql import types as T

    kinds = {
        "int": T.IntegerType(), "double": T.DoubleType(), "string": T.StringType(),
        "timestamp": T.TimestampType(),
    }
    unknown = sorted({k for _, k in columns} - kinds.keys())
    if unknown:
        raise ValueError(f"raw contract: no Spark type for column type(s) {unknown}")
    return T.StructType([T.StructField(n, kinds[k], True) for n, k in columns])


def read_csv(spark, uri: str | list[str], columns):
    """Drop or reference CSV(s) read by the raw contract (``tasks/raw_contract.py``): explicit
    schema, header checked against it, FAILFAST on any value outside the contract."""
    uris = [uri] if isinstance(uri, str) else uri
    for u in uris:
        if u.startswith("s3://"):
            raise ValueError(
                f"Spark steps read and write the data root directly; {u} is on S3. Use a local or "
                "shared-disk data root for Spark (S3 works for every non-Spark step)."
            )
    return spark.read.options(**raw_contract.SPARK_CSV_OPTIONS).csv(uri, schema=_schema(columns))
