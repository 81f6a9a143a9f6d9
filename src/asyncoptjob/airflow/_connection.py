"""An Airflow AWS connection, resolved the way the Amazon provider's hooks do.

Resolving blocks (the metadata database, a secrets backend, the supervisor's comms in
a triggerer, botocore's config files): :func:`resolve_connection` runs it in a worker
thread, never on the triggerer's loop.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

from .._client import shared_loaders

__all__ = ["CONNECTION_OPTIONS", "resolve_connection"]

#: Connection extras that configure the shared Poller (fleet mode).
CONNECTION_OPTIONS = ("redis_url", "redis_prefix")


def _resolve(aws_conn_id: str | None, region_name: str | None) -> dict[str, Any]:
    hook = AwsGenericHook(aws_conn_id=aws_conn_id, region_name=region_name, client_type="sagemaker")
    wrapper = hook.conn_config
    region = hook.region_name
    # Credentials (keys, a profile, an assumed role) live in the session.
    session = hook.get_session(region_name=region, deferrable=True)
    if isinstance(session, AioSession):
        # The library's shared data loader in place of the provider's: its files are
        # parsed once per process, letting the loop's thread run meanwhile.
        loader = shared_loaders().new_session().get_component("data_loader")
        session.register_component("data_loader", loader)
    options: dict[str, Any] = {"session": session}
    if region:
        options["region_name"] = region
    endpoint_url = wrapper.get_service_endpoint_url("sagemaker")
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if wrapper.botocore_config is not None:
        options["config"] = AioConfig().merge(wrapper.botocore_config)
    extra = wrapper.extra_config or {}
    for name in CONNECTION_OPTIONS:
        if extra.get(name):
            options[name] = extra[name]
    return options


async def resolve_connection(aws_conn_id: str | None, region_name: str | None) -> dict[str, Any]:
    """The Poller options (``session``, ``region_name``, ``endpoint_url``, ``config``,
    ``redis_url``, ``redis_prefix``) the connection gives, resolved in a worker thread.
    """
    return await anyio.to_thread.run_sync(_resolve, aws_conn_id, region_name)
