"""Realistic content for simulated optimization jobs.

Seeded jobs draw a *profile* (model source, optimization configs, instance
type) from the small catalog below, so descriptions vary the way a real
account's do: quantization, compilation, sharding and speculative decoding,
alone or combined, on GPU and Neuron instances. Each profile's constant
fields are serialized once per (profile, region, account) and shared by
every job that uses it, which keeps 100,000 seeded jobs cheap to hold and
to describe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._wire import dumps

__all__ = [
    "CONFIG_TYPES",
    "FAILURE_REASONS",
    "OUTPUT_MEMBERS",
    "Profile",
    "build_profiles",
    "inference_image",
    "optimization_types",
    "static_fragment",
]

#: Which OptimizationConfig union member stands for which optimization type,
#: as ListOptimizationJobs reports them in ``OptimizationTypes``.
CONFIG_TYPES: Final[Mapping[str, str]] = {
    "ModelQuantizationConfig": "Quantization",
    "ModelCompilationConfig": "Compilation",
    "ModelShardingConfig": "Sharding",
    "ModelSpeculativeDecodingConfig": "SpeculativeDecoding",
}

#: CreateOptimizationJob request members echoed back by DescribeOptimizationJob.
OUTPUT_MEMBERS: Final = (
    "ModelSource",
    "DeploymentInstanceType",
    "MaxInstanceCount",
    "OptimizationEnvironment",
    "OptimizationConfigs",
    "OutputConfig",
    "RoleArn",
    "StoppingCondition",
    "VpcConfig",
    "TrainingPlanArns",
)

FAILURE_REASONS: Final = (
    "AlgorithmError: CUDA out of memory while calibrating the quantized model. "
    "Choose a larger DeploymentInstanceType or lower OPTION_TENSOR_PARALLEL_DEGREE.",
    "ClientError: Could not access model data at the given S3Uri. Check that the "
    "role in RoleArn has s3:GetObject permission on the bucket.",
    "ClientError: The specified model is not supported for compilation on the "
    "requested instance family.",
    "InternalServerError: We encountered an internal error. Please try again.",
    "CapacityError: Unable to provision requested ML compute capacity. "
    "Please retry using a different ML instance type.",
)

_GPU_INSTANCES: Final = (
    "ml.g5.12xlarge",
    "ml.g5.48xlarge",
    "ml.g6.12xlarge",
    "ml.g6e.12xlarge",
    "ml.g6e.48xlarge",
    "ml.p4d.24xlarge",
    "ml.p5.48xlarge",
)
_NEURON_INSTANCES: Final = ("ml.inf2.24xlarge", "ml.inf2.48xlarge", "ml.trn1.32xlarge")


def _is_neuron(instance_type: str) -> bool:
    return instance_type.startswith(("ml.inf", "ml.trn"))


def inference_image(instance_type: str, region: str) -> str:
    """Return the LMI container SageMaker would recommend for *instance_type*."""
    tag = "0.30.0-neuronx-sdk2.20.2" if _is_neuron(instance_type) else "0.31.0-lmi13.0.0-cu124"
    return f"763104351884.dkr.ecr.{region}.amazonaws.com/djl-inference:{tag}"


def optimization_types(configs: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Return the ``OptimizationTypes`` a List summary reports for *configs*."""
    return tuple(CONFIG_TYPES[key] for config in configs for key in config if key in CONFIG_TYPES)


@dataclass(frozen=True, slots=True)
class Profile:
    """One kind of job a seeded account holds.

    Attributes:
        fragment: The constant description members, serialized as a JSON
            object body without braces, ready to splice into a response.
        instance_type: The ``DeploymentInstanceType``.
        types: The job's ``OptimizationTypes``.
        image: The ``RecommendedInferenceImage`` reported on completion.
    """

    fragment: str
    instance_type: str
    types: tuple[str, ...]
    image: str


_CONFIG_SETS: Final[tuple[tuple[tuple[Mapping[str, Any], ...], bool], ...]] = (
    # (configs, runs on Neuron)
    (({"ModelQuantizationConfig": {"OverrideEnvironment": {"OPTION_QUANTIZE": "awq"}}},), False),
    (({"ModelQuantizationConfig": {"OverrideEnvironment": {"OPTION_QUANTIZE": "fp8"}}},), False),
    (
        (
            {
                "ModelCompilationConfig": {
                    "OverrideEnvironment": {
                        "OPTION_TENSOR_PARALLEL_DEGREE": "8",
                        "OPTION_N_POSITIONS": "4096",
                        "OPTION_MAX_ROLLING_BATCH_SIZE": "4",
                    }
                }
            },
        ),
        True,
    ),
    (
        ({"ModelShardingConfig": {"OverrideEnvironment": {"OPTION_TENSOR_PARALLEL_DEGREE": "4"}}},),
        False,
    ),
    (({"ModelSpeculativeDecodingConfig": {"Technique": "EAGLE"}},), False),
    (
        (
            {
                "ModelSpeculativeDecodingConfig": {
                    "Technique": "EAGLE",
                    "TrainingDataSource": {
                        "S3Uri": "s3://mock-datasets/eagle/sharegpt/",
                        "S3DataType": "S3Prefix",
                    },
                }
            },
        ),
        False,
    ),
    (
        (
            {"ModelQuantizationConfig": {"OverrideEnvironment": {"OPTION_QUANTIZE": "awq"}}},
            {
                "ModelShardingConfig": {
                    "OverrideEnvironment": {"OPTION_TENSOR_PARALLEL_DEGREE": "2"}
                }
            },
        ),
        False,
    ),
    (
        (
            {"ModelQuantizationConfig": {"OverrideEnvironment": {"OPTION_QUANTIZE": "fp8"}}},
            {"ModelSpeculativeDecodingConfig": {"Technique": "EAGLE"}},
        ),
        False,
    ),
)


def _model_sources(region: str, account_id: str) -> tuple[Mapping[str, Any], ...]:
    jumpstart = f"s3://jumpstart-cache-prod-{region}/meta-textgeneration"
    return (
        {
            "S3": {
                "S3Uri": f"{jumpstart}/meta-textgeneration-llama-3-8b-instruct/artifacts/"
                "inference-prepack/v1.0.0/",
                "ModelAccessConfig": {"AcceptEula": True},
            }
        },
        {
            "S3": {
                "S3Uri": f"{jumpstart}/meta-textgeneration-llama-3-1-70b-instruct/artifacts/"
                "inference-prepack/v2.0.0/",
                "ModelAccessConfig": {"AcceptEula": True},
            }
        },
        {"S3": {"S3Uri": f"s3://ml-models-{account_id}/mistral-7b-instruct-v0.3/"}},
        {"S3": {"S3Uri": f"s3://ml-models-{account_id}/qwen2-5-14b-instruct/"}},
        {"SageMakerModel": {"ModelName": "llama-3-8b-finetuned-support"}},
    )


def static_fragment(members: Mapping[str, Any]) -> str:
    """Serialize constant description *members* as a brace-less JSON fragment."""
    return dumps(dict(members))[1:-1]


def build_profiles(region: str, account_id: str) -> tuple[Profile, ...]:
    """Return the catalog of seeded-job profiles for one region and account.

    Args:
        region: The AWS Region the mock pretends to be.
        account_id: The 12-digit account id in ARNs.

    Returns:
        Every combination of model source, config set and a matching
        instance type, in a fixed order so seeded RNG draws are repeatable.
    """
    role_arn = (
        f"arn:aws:iam::{account_id}:role/service-role/AmazonSageMaker-ExecutionRole-20240611T120000"
    )
    output = {"S3OutputLocation": f"s3://sagemaker-{region}-{account_id}/optimization-output/"}
    encrypted_output = {
        **output,
        "KmsKeyId": f"arn:aws:kms:{region}:{account_id}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    }
    profiles: list[Profile] = []
    for source_index, source in enumerate(_model_sources(region, account_id)):
        for set_index, (configs, neuron) in enumerate(_CONFIG_SETS):
            instances = _NEURON_INSTANCES if neuron else _GPU_INSTANCES
            # Two instance types per combination keep the catalog small but varied.
            for instance in (
                instances[(source_index + set_index) % len(instances)],
                instances[(source_index + 2 * set_index + 1) % len(instances)],
            ):
                members: dict[str, Any] = {
                    "ModelSource": source,
                    "DeploymentInstanceType": instance,
                    "OptimizationConfigs": list(configs),
                    "OutputConfig": encrypted_output if set_index % 3 == 0 else output,
                    "RoleArn": role_arn,
                    "StoppingCondition": {"MaxRuntimeInSeconds": 36000},
                }
                if source_index % 2 == 0:
                    members["OptimizationEnvironment"] = {"HF_MODEL_TRUST_REMOTE_CODE": "false"}
                if set_index % 4 == 1:
                    members["MaxInstanceCount"] = 2
                profiles.append(
                    Profile(
                        fragment=static_fragment(members),
                        instance_type=instance,
                        types=optimization_types(configs),
                        image=inference_image(instance, region),
                    )
                )
    return tuple(profiles)
