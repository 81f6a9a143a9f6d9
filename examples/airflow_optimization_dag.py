"""An Airflow DAG that optimizes a model with SageMaker and waits in the triggerer.

``optimize`` creates an optimization job (CreateOptimizationJob) and defers: the wait
runs in the triggerer, as an ``OptimizationJobTrigger`` on the triggerer's one shared
Poller. ``report`` receives the final DescribeOptimizationJob answer through XCom. A job
that ends FAILED or STOPPED fails ``optimize`` with the job's failure reason.

The AWS connection is ``aws_default``: credentials, ``region_name`` and, to point at
another endpoint (a local mock in tests), ``endpoint_url`` in its extra, e.g.::

    export AIRFLOW_CONN_AWS_DEFAULT='{"conn_type": "aws", "login": "AKIA...",
        "password": "...", "extra": {"region_name": "us-east-1"}}'
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from asyncoptjob.airflow import SageMakerCreateOptimizationJobOperator

ROLE_ARN = os.environ.get("OPTIMIZATION_ROLE_ARN", "arn:aws:iam::123456789012:role/SageMakerRole")
MODEL_S3_URI = os.environ.get("OPTIMIZATION_MODEL_S3_URI", "s3://my-models/llama3-8b/")
OUTPUT_S3_URI = os.environ.get("OPTIMIZATION_OUTPUT_S3_URI", "s3://my-models/optimized/")
#: Seconds between describes of a job (the triggerer's shared Poller batches them).
POLL_INTERVAL = float(os.environ.get("OPTIMIZATION_POLL_INTERVAL", "30"))

with DAG(
    dag_id="optimize_llama3",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["sagemaker", "asyncoptjob"],
) as dag:
    optimize = SageMakerCreateOptimizationJobOperator(
        task_id="optimize",
        config={
            # A job name must be unique in the account: one per DAG run.
            "OptimizationJobName": "llama3-int4-{{ ts_nodash | lower }}",
            "RoleArn": ROLE_ARN,
            "ModelSource": {"S3": {"S3Uri": MODEL_S3_URI}},
            "DeploymentInstanceType": "ml.g5.2xlarge",
            "OptimizationConfigs": [
                {"ModelQuantizationConfig": {"OverrideEnvironment": {"OPTION_QUANTIZE": "awq"}}}
            ],
            "OutputConfig": {"S3OutputLocation": OUTPUT_S3_URI},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
        poll_interval=POLL_INTERVAL,
        aws_conn_id="aws_default",
    )

    @task
    def report(description: dict[str, Any]) -> str:
        """What the next step gets: the optimized model's location."""
        return str(description["OutputConfig"]["S3OutputLocation"])

    report(optimize.output)
